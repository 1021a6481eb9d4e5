"""Bad weekly drops, one test each: every one ends in a clear error from the reader or in a failed
check, naming the file, the column and the rows, and every version stored by an earlier good week
still loads."""

import gzip
import os
import socket
import threading
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from rental_pipeline.cleaning import clean_listings
from rental_pipeline.drift import DRIFT_RULES
from rental_pipeline.listings import COLUMNS
from rental_pipeline.synthetic import generate_listings
from rental_pipeline_tests.conftest import (
    DATA_ASSETS,
    artifact_store,
    assert_nothing_lost,
    current_versions,
    data_config,
    executed_steps,
    failed_checks,
    failure_records,
    good_run,
    graph_config,
    materialize_checked,
)

RAW_STEPS = {"raw_data", "raw_data_checks"}
CLEAN_STEPS = RAW_STEPS | {"clean_sample", "clean_sample_checks"}


# Mirroring to W&B is the store's concern and is tested there; here it would only add seconds.
pytestmark = pytest.mark.usefixtures("no_mirror")


@pytest.fixture
def earlier(instance: dg.DagsterInstance) -> dict[str, tuple[str, Any]]:
    """Last week's drop, which passed every check; nothing a bad week does may lose it."""
    return good_run(instance)


def listings(seed: int = 11) -> pd.DataFrame:
    return generate_listings(rows=1_500, seed=seed)


def write(path: Path, content: bytes | str | pd.DataFrame) -> Path:
    if isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def run_week(instance: dg.DagsterInstance, source: str, **raw: Any) -> dg.ExecuteInProcessResult:
    return materialize_checked(instance, graph_config(raw={"source": source, **raw}))


def assert_refused_by_reader(
    instance: dg.DagsterInstance, earlier: dict[str, tuple[str, Any]], result: dg.ExecuteInProcessResult
) -> str:
    """raw_data failed before storing anything, so every asset still loads last week's version."""
    assert not result.success
    assert executed_steps(result) == {"raw_data"}
    assert not result.get_asset_materialization_events()
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "raw_data"
    assert current_versions(instance) == {name: ref for name, (ref, _) in earlier.items()}
    assert_nothing_lost(earlier)
    return str(failure.event_specific_data.error)


def assert_stopped_by_check(
    earlier: dict[str, tuple[str, Any]], result: dg.ExecuteInProcessResult, asset: str, check: str, steps: set[str]
) -> Any:
    """A blocking check failed: nothing after it ran, and last week's versions still load."""
    assert not result.success
    assert executed_steps(result) == steps
    assert (asset, check) in failed_checks(result)
    assert_nothing_lost(earlier)
    return failed_checks(result)[(asset, check)]


def test_empty_file(instance, earlier, tmp_path):
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(write(tmp_path / "drop.csv", b""))))
    assert "drop.csv: file is empty: expected a header with the 16 listing columns" in error


@pytest.mark.slow
def test_header_only(instance, earlier, tmp_path):
    path = write(tmp_path / "drop.csv", ",".join(COLUMNS) + "\n")
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(path)))
    assert "drop.csv: has a header but no listings rows" in error


def test_missing_column(instance, earlier, tmp_path):
    path = write(tmp_path / "drop.csv", listings().drop(columns="room_type"))
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(path)))
    assert "drop.csv, column 'room_type': missing column(s) ['room_type']" in error


def test_renamed_column(instance, earlier, tmp_path):
    path = write(tmp_path / "drop.csv", listings().rename(columns={"price": "nightly_price"}))
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(path)))
    assert "drop.csv, column 'price': missing column(s) ['price']; unexpected column(s) ['nightly_price']" in error
    assert "renamed? 'nightly_price' where 'price' belongs" in error


def test_extra_column(instance, earlier, tmp_path):
    path = write(tmp_path / "drop.csv", listings().assign(license="pending"))
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(path)))
    assert "drop.csv, column 'license': unexpected column(s) ['license']" in error


def test_price_as_text(instance, earlier, tmp_path):
    frame = listings().astype({"price": "str"})
    frame.loc[[2, 16], "price"] = ["$120", "$95"]
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(write(tmp_path / "drop.csv", frame))))
    assert "drop.csv, column 'price', rows 3, 17: expected a whole number, found ['$120', '$95']" in error


@pytest.mark.slow
def test_every_price_out_of_range(instance, earlier, tmp_path):
    frame = listings()
    frame["price"] = [5, 5_000] * (len(frame) // 2)
    result = run_week(instance, str(write(tmp_path / "drop.csv", frame)))
    failure = assert_stopped_by_check(earlier, result, "clean_sample", "row_count", CLEAN_STEPS)
    assert "drop.csv" in failure.description
    assert "cleaning kept 0 of 1,500 raw listings (1,500 price outliers, 0 outside the NYC box)" in failure.description
    assert failure_records(failure) == [
        {"rows_in": 1_500, "dropped_price_outliers": 1_500, "dropped_outside_box": 0, "rows_out": 0}
    ]
    drift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "borough_drift")
    assert "has no listings, so its borough mix cannot be compared with clean_sample:v0" in drift.description
    assert artifact_store().get("clean_sample:reference").ref == earlier["clean_sample"][0]


@pytest.mark.slow
def test_coordinates_outside_nyc(instance, earlier, tmp_path):
    frame = listings()
    already_outside = clean_listings(frame)[1].outside_box  # the generator's own strays
    frame["price"] = 100
    frame.loc[frame.index[:7], ["latitude", "longitude"]] = [34.05, -118.24]
    source = str(write(tmp_path / "some.csv", frame))
    some = materialize_checked(instance, data_config(raw={"source": source}), list(DATA_ASSETS))
    assert some.success  # cleaning drops the few listings outside New York and the week goes on
    clean = next(e for e in some.get_asset_materialization_events() if e.asset_key.to_user_string() == "clean_sample")
    assert clean.materialization.metadata["dropped_outside_box"].value == already_outside + 7

    frame[["latitude", "longitude"]] = [34.05, -118.24]
    result = run_week(instance, str(write(tmp_path / "elsewhere.csv", frame)))
    failure = assert_stopped_by_check(earlier, result, "clean_sample", "row_count", CLEAN_STEPS)
    assert "elsewhere.csv" in failure.description and "1,500 outside the NYC box" in failure.description
    assert "prices and coordinates" in failure.description


def test_unknown_borough(instance, earlier, tmp_path):
    frame = listings()
    frame.loc[[3, 9, 40], "neighbourhood_group"] = "Long Island"
    result = run_week(instance, str(write(tmp_path / "drop.csv", frame)))
    failure = assert_stopped_by_check(earlier, result, "raw_data", "schema", RAW_STEPS)
    assert failure.description.startswith("3 of 1,500 listings in raw_data (")
    assert "drop.csv" in failure.description and "column 'neighbourhood_group'" in failure.description
    assert "rows 4, 10, 41" in failure.description and "Long Island" in failure.description
    cases = failure_records(failure)
    assert [(c["row"], c["id"], c["column"], c["value"]) for c in cases] == [
        (row + 1, int(frame.loc[row, "id"]), "neighbourhood_group", "Long Island") for row in (3, 9, 40)
    ]
    assert failure.metadata["failing_rows"].value == 3


@pytest.mark.slow
def test_duplicated_ids(instance, earlier, tmp_path):
    frame = listings()
    frame.loc[6, "id"] = frame.loc[5, "id"]
    result = run_week(instance, str(write(tmp_path / "drop.csv", frame)))
    failure = assert_stopped_by_check(earlier, result, "raw_data", "schema", RAW_STEPS)
    assert "drop.csv" in failure.description and "column 'id' field_uniqueness fails (rows 6, 7" in failure.description
    assert {(c["row"], c["column"]) for c in failure_records(failure)} == {(6, "id"), (7, "id")}


def test_nan_price(instance, earlier, tmp_path):
    frame = listings().astype({"price": "float64"})
    frame.loc[7, "price"] = float("nan")
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(write(tmp_path / "drop.csv", frame))))
    assert "drop.csv, column 'price', rows 8: value is missing; every listing needs a whole number here" in error


def test_non_utf8_bytes(instance, earlier, tmp_path):
    frame = listings()
    frame.loc[4, "name"] = "Caf\N{LATIN SMALL LETTER E WITH ACUTE} near the park"
    data = frame.to_csv(index=False).encode("utf-8").replace("é".encode("utf-8"), "é".encode("latin-1"))
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(write(tmp_path / "drop.csv", data))))
    assert "drop.csv, column 'name', rows 5: is not UTF-8 text: byte 0xe9" in error
    assert "save the file as UTF-8" in error


def test_truncated_last_line(instance, earlier, tmp_path):
    data = listings().to_csv(index=False).encode("utf-8")
    cut = data[: data.rstrip(b"\n").rfind(b"\n") + 30]  # the last listing stops 30 bytes in
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(write(tmp_path / "drop.csv", cut))))
    assert "drop.csv, column '" in error and "rows 1500: the last row has" in error
    assert "the file looks cut off" in error


@pytest.mark.slow
def test_zero_rows_left_after_cleaning(instance, earlier, tmp_path):
    frame = listings()
    half = len(frame) // 2
    frame["price"] = [1_000] * half + [100] * (len(frame) - half)
    frame.loc[frame.index[half:], ["latitude", "longitude"]] = [40.0, -75.0]
    result = run_week(instance, str(write(tmp_path / "drop.csv", frame)))
    failure = assert_stopped_by_check(earlier, result, "clean_sample", "row_count", CLEAN_STEPS)
    assert "cleaning kept 0 of 1,500 raw listings (750 price outliers, 750 outside the NYC box)" in failure.description
    failed = failed_checks(result)
    assert {name for _, name in failed} == {"row_count", "borough_set", "borough_drift", *DRIFT_RULES}
    # the other columns' drift cannot be measured either, but only warns
    assert all(failed[("clean_sample", name)].severity.value == "WARN" for name in DRIFT_RULES)


def test_path_that_does_not_exist(instance, earlier, tmp_path):
    error = assert_refused_by_reader(instance, earlier, run_week(instance, str(tmp_path / "missing" / "drop.csv")))
    assert "drop.csv: file does not exist" in error


class LoopbackServer:
    """A real HTTP port on loopback that accepts connections and then says nothing, or almost
    nothing: `trickle` sends a valid header and then one byte at a time, forever."""

    def __init__(self, trickle: bool) -> None:
        self.trickle = trickle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/listings.csv"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection = self.listener.accept()[0]
            except TimeoutError:
                continue
            self.connections.append(connection)
            if self.trickle:
                thread = threading.Thread(target=self._trickle, args=(connection,), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _trickle(self, connection: socket.socket) -> None:
        try:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 1000000\r\n\r\nid")
            while not self.stop.wait(0.05):
                connection.sendall(b",")
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        for connection in self.connections:
            connection.close()
        self.listener.close()


def closed_port_url() -> str:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/listings.csv"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "reason"),
    [("silent", "timed out"), ("trickle", "did not finish within the timeout of 0.5 s"), ("closed", "refused")],
    ids=["silent", "trickle", "closed"],
)
def test_unreachable_url(instance, earlier, server, reason):
    loopback = LoopbackServer(trickle=server == "trickle") if server != "closed" else None
    url = loopback.url if loopback else closed_port_url()
    try:
        result = run_week(instance, url, timeout_seconds=0.5)
    finally:
        if loopback:
            loopback.close()
    error = assert_refused_by_reader(instance, earlier, result)
    assert f"{url}: " in error and reason in error  # the 0.5 s limit is what ended the read
    if loopback:
        assert len(loopback.connections) == 1  # one attempt, no retries


# --- sources that must not be read, and files that are no listings --------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
TOKEN = "ghp_" + "Zq8" * 12  # a token-like secret in a file someone points the source at


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def zipped(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("listings.csv", listings().to_csv(index=False))
    return path


def with_row(frame: pd.DataFrame, row: int, column: str, value: Any) -> pd.DataFrame:
    frame = frame.astype({column: object})
    frame.loc[row, column] = value
    return frame


# name -> (the source, given the test's folder; raw_data config; what the error says; what it must not say)
REFUSED_SOURCES: dict[str, tuple[Any, dict, str, tuple[str, ...]]] = {
    "a system file": (lambda d: str(write(d / "passwd", PASSWD)), {},
                      "passwd: is not a listings CSV: its first line has none of the 16 listing columns "
                      "(it starts with 'root:x:0:...')", ("/bin/bash", "daemon", "root:x:0:0")),
    "a token file": (lambda d: str(write(d / "token", TOKEN + "\n")), {},
                     "token: is not a listings CSV", (TOKEN, TOKEN[:10])),
    "a folder": (lambda d: str(d), {}, "is a directory, not a regular file", ()),
    "a named pipe": (lambda d: str(make_fifo(d / "drop.csv")), {}, "drop.csv: is a named pipe, not a regular file", ()),
    "a device": (lambda d: "/dev/zero", {}, "/dev/zero: is a device, not a regular file", ()),
    "over the size cap": (lambda d: str(write(d / "drop.csv", listings())), {"max_bytes": 10_000},
                          "drop.csv: is larger than the limit of 10,000 bytes", ()),
    "outside the allowed folders": (lambda d: str(write(d / "drop.csv", listings())), {"allowed_folders": ["/srv"]},
                                    "drop.csv: is outside the folders sources may be read from", ()),
    "an unsupported scheme": (lambda d: "ftp://127.0.0.1/drop.csv", {}, "unsupported source scheme 'ftp'", ()),
    "a zip archive": (lambda d: str(zipped(d / "drop.zip")), {}, "drop.zip: is a ZIP archive, not a CSV file", ()),
    "a binary file": (lambda d: str(write(d / "drop.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 600)), {},
                      "drop.xls: holds NUL bytes: it is a binary file", ("not UTF-8",)),
    "a gzip file that is cut off": (lambda d: str(write(d / "drop.csv.gz", gzip.compress(b"id,name\n" * 999)[:-40])),
                                    {}, "drop.csv.gz: is gzip-compressed but cut off", ("not UTF-8",)),
    "a field over the parser's limit": (lambda d: str(write(d / "drop.csv",
                                                           with_row(listings(), 4, "name", "y" * 300_000))),
                                        {}, "drop.csv, column 'name', rows 5: field of 300,000 characters", ("yyyy",)),
    "an id beyond 64 bits": (lambda d: str(write(d / "drop.csv",
                                                 with_row(listings(), 9, "id", "99999999999999999999"))),
                             {}, "drop.csv, column 'id', rows 10: whole number does not fit in 64 bits", ()),
    "credentials in a URL": (lambda d: "http://reader:pa55word@127.0.0.1:9/drop.csv?token=t0k3n", {},
                             "http://127.0.0.1:9/drop.csv?<redacted>: credentials in a URL are not accepted",
                             ("pa55word", "t0k3n", "reader")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(REFUSED_SOURCES))
def test_sources_that_must_not_be_read(instance, earlier, tmp_path, case):
    make, raw, says, never = REFUSED_SOURCES[case]
    result = run_week(instance, make(tmp_path), **raw)
    error = assert_refused_by_reader(instance, earlier, result)
    assert says in error  # a pipe or a device is refused before it is opened, so it never holds the run
    records = " ".join(str(entry.dagster_event or entry.user_message) for entry in instance.all_logs(result.run_id))
    for secret in never:
        assert secret not in error and secret not in records


def test_a_redirect_to_a_host_outside_the_allow_list_is_not_followed(instance, earlier, monkeypatch):
    from rental_pipeline_tests.http_source import LoopbackHTTP, Route

    server = LoopbackHTTP()
    try:
        server.routes["/drop.csv"] = Route(redirect=server.url("/drop.csv", host="localhost"))
        monkeypatch.setenv("RENTAL_PIPELINE_SOURCE_HOSTS", "127.0.0.1")
        error = assert_refused_by_reader(instance, earlier, run_week(instance, server.url("/drop.csv")))
    finally:
        server.close()
    assert (
        "a redirect to host 'localhost' is not followed "
        "(allowed by RENTAL_PIPELINE_SOURCE_HOSTS or allowed_hosts: 127.0.0.1)"
    ) in error
    assert [host.split(":")[0] for host, _, _ in server.requests] == ["127.0.0.1"]


def test_a_gzip_drop_is_read_like_its_csv(instance, tmp_path):
    frame = listings()
    plain = materialize_checked(instance, data_config(raw={"source": str(write(tmp_path / "drop.csv", frame))}),
                                selection=["raw_data"])
    packed = tmp_path / "drop.csv.gz"
    packed.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    compressed = materialize_checked(instance, data_config(raw={"source": str(packed)}), selection=["raw_data"])
    assert plain.success and compressed.success
    assert artifact_store().versions("raw_data") == [0]  # the same listings make the same version
