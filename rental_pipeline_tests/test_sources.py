"""The source policy: what may be read, how much, from where, with which credentials, and what of a
source is ever written down. Local cases use real files, pipes and devices; URL cases a real HTTP
server on loopback (`http_source.LoopbackHTTP`)."""

from __future__ import annotations

import gzip
import os
import socket
import threading
from pathlib import Path

import pytest

from rental_pipeline.sources import (
    AUTH_VARIABLE_PREFIX,
    FOLDERS_VARIABLE,
    HOSTS_VARIABLE,
    MAX_BYTES_VARIABLE,
    SourceError,
    SourcePolicy,
    copy_source,
    describe,
    read_source,
    redact,
    redact_text,
    snippet,
)
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.http_source import LoopbackHTTP, Route

OPEN = SourcePolicy(environ={})


@pytest.fixture
def http():
    server = LoopbackHTTP()
    yield server
    server.close()


@pytest.fixture(scope="module")
def listings_bytes() -> bytes:
    return generate_listings(rows=40, seed=3).to_csv(index=False).encode()


# --- what is written down ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "recorded"),
    [
        ("http://127.0.0.1:8765/x.csv?token=abc", "http://127.0.0.1:8765/x.csv?<redacted>"),
        ("https://user:pass@data.example.com/a/b.csv", "https://data.example.com/a/b.csv"),
        ("https://data.example.com/b.csv#frag=secret", "https://data.example.com/b.csv"),
        ("http://u:p@[::1]:8080/x?k=v#f", "http://[::1]:8080/x?<redacted>"),
        ("ftp://me:pw@host/x", "ftp://host/x"),
        ("http://host:notaport/x?token=abc", "http://<redacted>"),
        ("data/week.csv", "data/week.csv"),
        ("/srv/drops/week?.csv", "/srv/drops/week?.csv"),
        ("file:///srv/drops/week.csv", "file:///srv/drops/week.csv"),
    ],
)
def test_a_recorded_source_holds_no_user_info_query_or_fragment(source, recorded):
    assert describe(source) == recorded


def test_urls_are_redacted_inside_text_and_config():
    text = "cannot fetch https://u:pw@h.example/x.csv?sig=123 (403); see http://h/y?k=2."
    assert redact_text(text) == "cannot fetch https://h.example/x.csv?<redacted> (403); see http://h/y?<redacted>"
    config = {"source": "http://h/x?token=1", "nested": [{"u": "https://a:b@h/"}], "rows": 5}
    assert redact(config) == {"source": "http://h/x?<redacted>", "nested": [{"u": "https://h/"}], "rows": 5}
    assert redact(redact(config)) == redact(config)  # what is already redacted stays as it is
    for url in ("http://h:1/x.csv?token=1", "s3://bkt/l/w.csv?endpoint_url=http://127.0.0.1:9&region=r"):
        assert redact_text(describe(url)) == describe(url) == describe(describe(url))


def test_snippets_are_short_and_escaped():
    assert snippet("root:x:0:0:root:/root:/bin/bash", 12) == "root:x:0:..."
    assert snippet("a\x1b[31mb\n'c'") == "a\\x1b[31mb\\n\\'c\\'"


# --- local files -------------------------------------------------------------------------------


def test_a_local_file_and_a_file_url_read_the_same(tmp_path, listings_bytes):
    path = tmp_path / "week.csv"
    path.write_bytes(listings_bytes)
    by_path, by_url = read_source(str(path), OPEN), read_source(path.as_uri(), OPEN)
    assert by_path.data == by_url.data == listings_bytes
    assert by_path.size_bytes == len(listings_bytes) and not by_path.compressed


def test_only_regular_files_are_read(tmp_path):
    with pytest.raises(SourceError, match="is a directory, not a regular file"):
        read_source(str(tmp_path), OPEN)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="is a named pipe, not a regular file"):
        read_source(str(fifo), OPEN)  # no writer ever comes: refused before opening, never waits for one
    if Path("/dev/zero").exists():
        with pytest.raises(SourceError, match="/dev/zero: is a device, not a regular file"):
            read_source("/dev/zero", OPEN)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    with pytest.raises(SourceError, match="is a socket"):
        read_source(str(tmp_path / "sock"), OPEN)
    server.close()
    with pytest.raises(SourceError, match=r"nope\.csv: file does not exist"):
        read_source(str(tmp_path / "nope.csv"), OPEN)


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path, listings_bytes):
    path = tmp_path / "week.csv"
    path.write_bytes(listings_bytes)
    small = SourcePolicy(environ={}, max_bytes=1_000)
    with pytest.raises(SourceError, match=rf"larger than the limit of 1,000 bytes \({len(listings_bytes):,} bytes\)"):
        read_source(str(path), small)


def test_gzip_is_decompressed_and_the_cap_counts_what_it_expands_to(tmp_path, listings_bytes):
    packed = tmp_path / "week.csv.gz"
    packed.write_bytes(gzip.compress(listings_bytes[:2000]) + gzip.compress(listings_bytes[2000:]))  # two members
    read = read_source(str(packed), OPEN)
    assert read.data == listings_bytes and read.compressed and read.size_bytes == packed.stat().st_size
    copied = tmp_path / "copy.csv"
    assert copy_source(str(packed), copied, OPEN).compressed and copied.read_bytes() == listings_bytes

    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"0" * 50_000_000))  # 50 MB of zeros in about 50 kB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SourceError, match="more than 1,000,000 bytes once decompressed"):
        read_source(str(bomb), SourcePolicy(environ={}, max_bytes=1_000_000))

    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(listings_bytes)[:-30])
    with pytest.raises(SourceError, match="gzip-compressed but cut off"):
        read_source(str(cut), OPEN)


def test_folder_allow_list_follows_links_and_config_only_narrows(tmp_path, listings_bytes, monkeypatch):
    allowed, other = tmp_path / "drops", tmp_path / "elsewhere"
    (allowed / "sub").mkdir(parents=True)
    other.mkdir()
    (allowed / "sub" / "week.csv").write_bytes(listings_bytes)
    (other / "secret.csv").write_bytes(b"token=hunter2\n")
    (allowed / "link.csv").symlink_to(other / "secret.csv")
    monkeypatch.setenv(FOLDERS_VARIABLE, f"{allowed},{tmp_path / 'also'}")
    monkeypatch.setenv(HOSTS_VARIABLE, "")  # set and empty: no URL at all
    policy = SourcePolicy.from_environment()

    assert read_source(str(allowed / "sub" / "week.csv"), policy).data == listings_bytes
    for outside in (other / "secret.csv", allowed / "link.csv", allowed / ".." / "elsewhere" / "secret.csv"):
        outside_message = f"outside the folders sources may be read from \\(allowed by {FOLDERS_VARIABLE}"
        with pytest.raises(SourceError, match=outside_message):
            read_source(str(outside), policy)
    with pytest.raises(SourceError, match="host '127.0.0.1' is not allowed here"):
        read_source("http://127.0.0.1:9/x.csv", policy)

    narrower = policy.narrowed(folders=[str(allowed / "sub")], max_bytes=10**15)
    assert narrower.folders == ((allowed / "sub").resolve(),) and narrower.max_bytes == policy.max_bytes
    with pytest.raises(SourceError, match=f"outside those allowed by {FOLDERS_VARIABLE}"):
        policy.narrowed(folders=[str(other)])
    with pytest.raises(SourceError, match=f"outside those allowed by {HOSTS_VARIABLE}"):
        policy.narrowed(hosts=["127.0.0.1"])
    assert policy.narrowed(max_bytes=10).max_bytes == 10

    monkeypatch.setenv(MAX_BYTES_VARIABLE, "lots")
    with pytest.raises(SourceError, match="not a whole number of bytes"):
        SourcePolicy.from_environment()


def test_the_laptop_default_is_open_with_a_4_gib_cap():
    policy = SourcePolicy.from_environment({})
    assert (policy.folders, policy.hosts, policy.max_bytes) == (None, None, 4 << 30)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("ftp://127.0.0.1/x.csv", "unsupported source scheme 'ftp'"),
        ("data:text/csv,id,name", "unsupported source scheme 'data'"),
        ("file://fileserver/share/x.csv", "file:// URLs name files on this machine only"),
    ],
)
def test_other_schemes_are_refused(source, problem):
    with pytest.raises(SourceError, match=problem):
        read_source(source, OPEN)


# --- downloads ------------------------------------------------------------------------------------


def test_download_and_gzip_over_http(http, listings_bytes):
    http.routes["/week.csv"] = Route(body=listings_bytes)
    http.routes["/week.csv.gz"] = Route(body=gzip.compress(listings_bytes))
    assert read_source(http.url("/week.csv"), OPEN).data == listings_bytes
    read = read_source(http.url("/week.csv.gz"), OPEN)
    assert read.data == listings_bytes and read.compressed


def test_downloads_are_capped_whatever_the_server_says(http):
    http.routes["/liar"] = Route(body=b"id\n", headers={"Content-Length": str(10**12)})
    with pytest.raises(SourceError, match=r"larger than the limit of 1,000,000 bytes \(1,000,000,000,000 bytes\)"):
        read_source(http.url("/liar"), SourcePolicy(environ={}, max_bytes=1_000_000))
    sent = []

    def endless() -> bytes:
        sent.append(1)
        return b"x" * 65_536 if len(sent) < 10_000 else b""

    http.routes["/endless"] = Route(stream=endless)  # no Content-Length: counted while downloading
    with pytest.raises(SourceError, match="larger than the limit of 1,000,000 bytes"):
        read_source(http.url("/endless"), SourcePolicy(environ={}, max_bytes=1_000_000))
    assert len(sent) < 1_000  # the download stopped soon after the cap, it did not run to the end


def test_redirects_are_bounded_and_checked_at_every_hop(http, listings_bytes):
    http.routes["/week.csv"] = Route(body=listings_bytes)
    http.routes["/moved"] = Route(redirect="/week.csv")
    for hop in range(8):
        http.routes[f"/hop{hop}"] = Route(redirect=f"/hop{hop + 1}" if hop < 7 else "/week.csv")
    http.routes["/loop"] = Route(redirect="/loop")
    http.routes["/to-file"] = Route(redirect="file:///etc/passwd")
    http.routes["/to-other-host"] = Route(redirect=http.url("/week.csv", host="localhost"))

    assert read_source(http.url("/moved"), OPEN).data == listings_bytes
    assert read_source(http.url("/hop3"), OPEN).data == listings_bytes  # 5 hops
    with pytest.raises(SourceError, match=r"too many redirects \(more than 5\)"):
        read_source(http.url("/hop0"), OPEN)  # 8 hops
    with pytest.raises(SourceError, match="too many redirects"):
        read_source(http.url("/loop"), OPEN)
    with pytest.raises(SourceError, match=r"file:///etc/passwd: a redirect to a scheme other than http\(s\) is not"):
        read_source(http.url("/to-file"), OPEN)
    only_loopback_ip = SourcePolicy(environ={}, hosts=("127.0.0.1",))
    with pytest.raises(SourceError, match="a redirect to host 'localhost' is not followed"):
        read_source(http.url("/to-other-host"), only_loopback_ip)
    assert not any(path == "/week.csv" and host.startswith("localhost") for host, path, _ in http.requests)


def test_credentials_come_from_a_named_variable_and_go_to_the_source_host_only(http, listings_bytes):
    token = "Bearer s3cret-in-env"
    environ = {f"{AUTH_VARIABLE_PREFIX}LISTINGS": token}
    policy = SourcePolicy(environ=environ)
    http.routes["/private.csv"] = Route(body=listings_bytes, require={"Authorization": token})
    http.routes["/same-host"] = Route(redirect="/private.csv")
    http.routes["/public.csv"] = Route(body=listings_bytes)
    http.routes["/other-host"] = Route(redirect=http.url("/public.csv", host="localhost"))

    assert read_source(http.url("/private.csv"), policy, auth_variable=f"{AUTH_VARIABLE_PREFIX}LISTINGS").data
    assert read_source(http.url("/same-host"), policy, auth_variable=f"{AUTH_VARIABLE_PREFIX}LISTINGS").data
    assert read_source(http.url("/other-host"), policy, auth_variable=f"{AUTH_VARIABLE_PREFIX}LISTINGS").data
    sent = {(host.split(":")[0], path): headers.get("Authorization") for host, path, headers in http.requests}
    assert sent[("127.0.0.1", "/private.csv")] == token
    assert sent[("localhost", "/public.csv")] is None  # not forwarded to another host

    with pytest.raises(SourceError, match=r"private\.csv: cannot download listings \(HTTP 401"):
        read_source(http.url("/private.csv"), policy)

    http.routes["/keyed.csv"] = Route(body=listings_bytes, require={"X-Api-Key": "k3y"})
    keyed = SourcePolicy(environ={f"{AUTH_VARIABLE_PREFIX}KEY": "X-Api-Key: k3y"})
    assert read_source(http.url("/keyed.csv"), keyed, auth_variable=f"{AUTH_VARIABLE_PREFIX}KEY").data


def test_only_auth_variables_may_be_sent_and_a_missing_one_is_named_not_shown(http):
    http.routes["/x.csv"] = Route(body=b"id\n")
    policy = SourcePolicy(environ={"WANDB_API_KEY": "do-not-send", f"{AUTH_VARIABLE_PREFIX}EMPTY": ""})
    with pytest.raises(SourceError, match=f"only environment variables named {AUTH_VARIABLE_PREFIX}"):
        read_source(http.url("/x.csv"), policy, auth_variable="WANDB_API_KEY")
    with pytest.raises(SourceError, match=f"{AUTH_VARIABLE_PREFIX}MISSING: is not set"):
        read_source(http.url("/x.csv"), policy, auth_variable=f"{AUTH_VARIABLE_PREFIX}MISSING")
    assert not http.requests  # refused before connecting


def test_netrc_gives_basic_auth_for_its_host(http, tmp_path, listings_bytes):
    import base64

    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password n3trc-pass\n", encoding="utf-8")
    netrc.chmod(0o600)
    expected = "Basic " + base64.b64encode(b"reader:n3trc-pass").decode()
    http.routes["/private.csv"] = Route(body=listings_bytes, require={"Authorization": expected})
    assert read_source(http.url("/private.csv"), SourcePolicy(environ={"NETRC": str(netrc)})).data == listings_bytes

    netrc.write_text("machine 127.0.0.1 login reader password n3trc-pass\nn3trc-pass2\n", encoding="utf-8")
    with pytest.raises(SourceError) as malformed:
        read_source(http.url("/private.csv"), SourcePolicy(environ={"NETRC": str(netrc)}))
    assert "netrc file is malformed (line " in str(malformed.value) and "n3trc" not in str(malformed.value)


def test_credentials_in_a_url_are_refused_without_showing_them(http):
    http.routes["/x.csv"] = Route(body=b"id\n")
    with pytest.raises(SourceError) as refused:
        read_source(f"http://reader:pa55word@127.0.0.1:{http.port}/x.csv?token=t0ken", OPEN)
    message = str(refused.value)
    assert "credentials in a URL are not accepted" in message and "netrc" in message
    assert "pa55word" not in message and "reader" not in message and "t0ken" not in message
    assert not http.requests


def test_a_slow_name_lookup_or_server_cannot_outlast_the_timeout(monkeypatch):
    """The whole download is bounded, name lookup included (no socket timeout covers it). No name
    server can be reached here, so a hanging one is stood in for at its boundary, `getaddrinfo`."""
    release = threading.Event()
    real = socket.getaddrinfo

    def slow_lookup(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    try:
        # The lookup is held until released below: only the 0.3 s bound can end the read first.
        with pytest.raises(SourceError, match=r"timed out: no answer within 0.3 s"):
            read_source("http://listings.invalid/x.csv", OPEN, timeout=0.3)
    finally:
        release.set()


def test_credentials_never_travel_over_plain_http_to_another_machine():
    policy = SourcePolicy(environ={f"{AUTH_VARIABLE_PREFIX}X": "Bearer t"})
    with pytest.raises(SourceError, match="credentials are sent over https only"):
        read_source("http://data.example.com/x.csv", policy, auth_variable=f"{AUTH_VARIABLE_PREFIX}X")


def test_a_link_swapped_in_after_the_check_is_still_refused(tmp_path, listings_bytes, monkeypatch):
    """The folder check is made again on the file actually opened, so replacing the file by a link
    to elsewhere between the check and the open reads nothing."""
    from rental_pipeline import sources

    allowed, secret = tmp_path / "drops", tmp_path / "secret.csv"
    allowed.mkdir()
    (allowed / "week.csv").write_bytes(listings_bytes)
    secret.write_bytes(b"token=hunter2\n")
    policy = SourcePolicy(environ={}, folders=(allowed.resolve(),))
    real_open = sources.open_regular_file

    def swap_then_open(path, shown=None):  # the race, made to happen every time
        (allowed / "week.csv").unlink()
        (allowed / "week.csv").symlink_to(secret)
        return real_open(path, shown)

    monkeypatch.setattr(sources, "open_regular_file", swap_then_open)
    with pytest.raises(SourceError, match="outside the folders sources may be read from"):
        read_source(str(allowed / "week.csv"), policy)


# --- objects in S3-compatible storage (a real server; skipped, saying why, without one) -----------


def test_objects_are_read_under_the_policy(s3_credentials, listings_bytes):
    import uuid

    from rental_pipeline.store.s3_backend import S3Backend
    from rental_pipeline_tests.store.backends import TEST_BUCKET

    prefix = f"sources-{uuid.uuid4().hex[:10]}"
    bucket = S3Backend(TEST_BUCKET, prefix, endpoint_url=s3_credentials, region="us-east-1")
    bucket.write("landing/week.csv.gz", gzip.compress(listings_bytes))
    bucket.write("models/model.skops", b"PK\x03\x04 not for reading as listings")
    options = f"?endpoint_url={s3_credentials}&region=us-east-1"
    week = f"s3://{TEST_BUCKET}/{prefix}/landing/week.csv.gz{options}"
    landing_only = SourcePolicy(environ={}, folders=(f"s3://{TEST_BUCKET}/{prefix}/landing/",))

    read = read_source(week, landing_only)
    assert read.data == listings_bytes and read.compressed and read.source == week  # endpoint kept
    with pytest.raises(SourceError, match="models/model.skops.*is outside the folders sources may be read from"):
        read_source(f"s3://{TEST_BUCKET}/{prefix}/models/model.skops{options}", landing_only)
    with pytest.raises(SourceError, match="is larger than the limit of 100 bytes"):
        read_source(week, SourcePolicy(environ={}, max_bytes=100))
    with pytest.raises(SourceError, match="gone.csv.*object does not exist"):
        read_source(f"s3://{TEST_BUCKET}/{prefix}/landing/gone.csv{options}", landing_only)
    with pytest.raises(SourceError, match=r"\?<redacted>: cannot read object"):
        read_source(f"s3://{TEST_BUCKET}/{prefix}/landing/week.csv.gz?token=x", landing_only)
