"""Reading a listings drop from a path, a file:// URL or an http:// URL, and refusing bad ones clearly."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rental_pipeline.listings import COLUMNS, ListingsError, read_listings

GOOD_ROWS = [
    "1,Cozy room,10,Ann,Brooklyn,Williamsburg,40.71,-73.95,Private room,80,2,3,2019-06-01,0.5,1,100",
    '2,"Big loft, roof",11,Bo,Manhattan,Chelsea,40.74,-74.0,Entire home/apt,250,3,0,,,2,0',
]


def write_csv(path: Path, rows: list[str], header: str = ",".join(COLUMNS)) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "drop.csv", GOOD_ROWS)


@pytest.fixture
def http_root(tmp_path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving tmp_path."""
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_path_file_url_and_http_url_give_the_same_listings(good_csv, http_root):
    base_url, _ = http_root
    by_path = read_listings(str(good_csv))
    by_file_url = read_listings(good_csv.as_uri())
    by_http = read_listings(f"{base_url}/{good_csv.name}")
    for drop in (by_file_url, by_http):
        pd.testing.assert_frame_equal(drop.listings, by_path.listings)
        assert drop.sha256 == by_path.sha256
    listings = by_path.listings
    assert list(listings.columns) == list(COLUMNS)
    assert listings["price"].dtype == "int64" and listings["latitude"].dtype == "float64"
    assert listings["name"].tolist() == ["Cozy room", "Big loft, roof"]
    assert listings["last_review"].isna().tolist() == [False, True]
    assert by_path.size_bytes == good_csv.stat().st_size


def test_real_sample_parses_exactly_like_pandas_defaults(sample1):
    pd.testing.assert_frame_equal(read_listings(str(sample1)).listings, pd.read_csv(sample1))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ListingsError, match=r"nope\.csv: file does not exist"):
        read_listings(str(tmp_path / "nope.csv"))


def test_http_404_is_one_clear_error(http_root):
    base_url, _ = http_root
    with pytest.raises(ListingsError, match="cannot download listings"):
        read_listings(f"{base_url}/missing.csv", timeout=5)


def test_price_as_text_names_column_and_rows(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace(",250,", ",$250,")]
    with pytest.raises(ListingsError) as error:
        read_listings(str(write_csv(tmp_path / "bad.csv", rows)))
    assert (error.value.column, error.value.rows) == ("price", [2])
    assert "bad.csv, column 'price', rows 2: expected a whole number, found ['$250']" in str(error.value)


def test_missing_column_is_named(tmp_path):
    header = ",".join(c for c in COLUMNS if c != "room_type")
    rows = [",".join(r.split(",")[:8] + r.split(",")[9:]) for r in GOOD_ROWS[:1]]
    with pytest.raises(ListingsError, match=r"missing column\(s\) \['room_type'\]"):
        read_listings(str(write_csv(tmp_path / "bad.csv", rows, header=header)))


# --- edges of the input ---------------------------------------------------------------------------


def test_windows_and_unix_line_ends_give_the_same_table(tmp_path):
    """Line breaks inside quoted names too: a file saved on Windows trains the same model."""
    from rental_pipeline.synthetic import generate_listings

    frame = generate_listings(rows=300, seed=4)
    frame.loc[[3, 50, 51], "name"] = ["Loft\nwith a view", 'Two\n\nlines, "quoted"', "end\n"]
    unix = frame.to_csv(index=False, lineterminator="\n").encode()
    windows = unix.replace(b"\n", b"\r\n")  # what a Windows editor saves, inside quotes as well
    assert b"\r" not in unix and windows.count(b"\r\n") == unix.count(b"\n")
    from_unix = read_listings(str(write_bytes(tmp_path / "unix.csv", unix))).listings
    from_windows = read_listings(str(write_bytes(tmp_path / "windows.csv", windows))).listings
    pd.testing.assert_frame_equal(from_windows, from_unix)
    assert not from_windows["name"].str.contains("\r").any()
    assert from_unix.loc[3, "name"] == "Loft\nwith a view"


def test_a_field_over_the_parser_limit_names_its_rows_and_column(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace("Big loft, roof", "x" * 1_000_000), GOOD_ROWS[0].replace("1,", "3,", 1)]
    with pytest.raises(ListingsError) as error:
        read_listings(str(write_csv(tmp_path / "huge.csv", rows)))
    message = str(error.value)
    assert "huge.csv, column 'name', rows 2: field of 1,000,000 characters, over the limit of 131,072" in message
    assert len(message) < 400


@pytest.mark.parametrize("value", ["9223372036854775808", "18446744073709551616", "-9223372036854775809"])
def test_whole_numbers_beyond_64_bits_are_refused_with_their_rows(tmp_path, value):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace("2,", f"{value},", 1)]
    with pytest.raises(ListingsError, match=rf"big.csv, column 'id', rows 2: whole number does not fit in 64 bits, "
                                            rf"found \['{value}'\]"):
        read_listings(str(write_csv(tmp_path / "big.csv", rows)))
    largest = str(2**63 - 1)
    rows = [GOOD_ROWS[0], GOOD_ROWS[1].replace("2,", f"{largest},", 1)]
    fits = read_listings(str(write_csv(tmp_path / "fits.csv", rows)))
    assert fits.listings["id"].tolist() == [1, 2**63 - 1]


def test_a_gzip_file_is_read_as_its_csv(tmp_path, good_csv):
    import gzip

    packed = tmp_path / "drop.csv.gz"
    packed.write_bytes(gzip.compress(good_csv.read_bytes()))
    drop = read_listings(str(packed))
    pd.testing.assert_frame_equal(drop.listings, read_listings(str(good_csv)).listings)
    assert drop.size_bytes == packed.stat().st_size  # what was read, compressed


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"PK\x03\x04" + b"\x00" * 40, "is a ZIP archive, not a CSV file"),
        (b"BZh91AY&SY" + b"\x00" * 40, "is bzip2-compressed"),
        (",".join(COLUMNS).encode("utf-16"), "is UTF-16 text"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "holds NUL bytes: it is a binary file"),
    ],
    ids=["zip", "bzip2", "utf-16", "xls"],
)
def test_files_that_are_no_csv_text_are_named_not_called_undecodable(tmp_path, data, says):
    with pytest.raises(ListingsError, match=says) as error:
        read_listings(str(write_bytes(tmp_path / "drop.csv", data)))
    assert "is not UTF-8" not in str(error.value)
