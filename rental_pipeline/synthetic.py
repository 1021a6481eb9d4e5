"""Synthetic New York short-term rental listings, shaped like the real weekly drop.

A fresh clone must run the whole pipeline with no data file and no network, and cleaning, the
data checks, the stratified split and the model must meet the same conditions they meet on real
data. So this generator reproduces the real table's schema exactly and its distributions
closely. The constants below were measured on the reference project's public 20,000-row sample
of 2019 listings and are embedded here: nothing is read at run time, and the real data never
enters the project.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rental_pipeline.cleaning import CleaningRules
from rental_pipeline.listings import BOROUGHS, COLUMNS, FLOAT_COLUMNS, INTEGER_COLUMNS, ROOM_TYPES

# --- where listings are ----------------------------------------------------------------------

BOROUGH_SHARES: dict[str, float] = {
    "Bronx": 0.02205, "Brooklyn": 0.41325, "Manhattan": 0.43870, "Queens": 0.11775,
    "Staten Island": 0.00825,
}
# Shares of (Entire home/apt, Private room, Shared room) within each borough.
ROOM_TYPE_SHARES: dict[str, tuple[float, float, float]] = {
    "Bronx": (0.3401, 0.5986, 0.0613), "Brooklyn": (0.4774, 0.5040, 0.0186),
    "Manhattan": (0.6080, 0.3713, 0.0207), "Queens": (0.3732, 0.5941, 0.0327),
    "Staten Island": (0.4485, 0.5273, 0.0242),
}
# (lat_min, lat_max, lon_min, lon_max) observed per borough; all inside the cleaning box.
BOROUGH_BOUNDS: dict[str, tuple[float, float, float, float]] = {
    "Bronx": (40.801, 40.914, -73.932, -73.784),
    "Brooklyn": (40.571, 40.739, -74.038, -73.860),
    "Manhattan": (40.702, 40.876, -74.019, -73.909),
    "Queens": (40.569, 40.792, -73.958, -73.717),
    "Staten Island": (40.508, 40.648, -74.240, -74.060),
}
# lat_min, lat_max, lon_min, lon_max kept by cleaning: the outliers are placed just outside it.
_BOX = CleaningRules()
NYC_BOX = (_BOX.min_latitude, _BOX.max_latitude, _BOX.min_longitude, _BOX.max_longitude)
# The most common neighbourhoods: (name, share in borough, lat, lon, lat spread, lon spread).
Neighbourhood = tuple[str, float, float, float, float, float]
NEIGHBOURHOODS: dict[str, tuple[Neighbourhood, ...]] = {
    "Bronx": (
        ("Kingsbridge", .068, 40.8778, -73.9025, .0067, .0037),
        ("Mott Haven", .064, 40.8107, -73.9214, .0026, .0040),
        ("Fordham", .061, 40.8623, -73.8939, .0059, .0057),
        ("Longwood", .048, 40.8216, -73.9025, .0039, .0066),
        ("Concourse", .048, 40.8269, -73.9246, .0047, .0030),
        ("Wakefield", .045, 40.8943, -73.8514, .0059, .0058),
        ("Port Morris", .039, 40.8071, -73.9266, .0031, .0070),
        ("Williamsbridge", .034, 40.8788, -73.8604, .0029, .0055),
        ("Norwood", .032, 40.8751, -73.8803, .0035, .0047),
        ("Allerton", .030, 40.8647, -73.8594, .0045, .0075),
        ("Highbridge", .025, 40.8349, -73.9279, .0045, .0022),
        ("Parkchester", .025, 40.8350, -73.8633, .0039, .0095)),
    "Brooklyn": (
        ("Williamsburg", .191, 40.7127, -73.9518, .0045, .0092),
        ("Bedford-Stuyvesant", .182, 40.6872, -73.9399, .0051, .0132),
        ("Bushwick", .119, 40.6968, -73.9203, .0060, .0084),
        ("Crown Heights", .078, 40.6728, -73.9473, .0038, .0115),
        ("Greenpoint", .057, 40.7279, -73.9506, .0051, .0058),
        ("Flatbush", .033, 40.6451, -73.9602, .0067, .0046),
        ("Clinton Hill", .030, 40.6882, -73.9644, .0043, .0028),
        ("East Flatbush", .028, 40.6490, -73.9397, .0077, .0104),
        ("Park Slope", .025, 40.6744, -73.9787, .0043, .0034),
        ("Fort Greene", .024, 40.6903, -73.9744, .0037, .0033),
        ("Sunset Park", .021, 40.6524, -74.0034, .0088, .0094),
        ("Prospect Heights", .016, 40.6777, -73.9686, .0026, .0034),
        ("Carroll Gardens", .013, 40.6805, -73.9960, .0030, .0031)),
    "Manhattan": (
        ("Harlem", .127, 40.8161, -73.9480, .0092, .0055),
        ("Upper West Side", .091, 40.7882, -73.9740, .0097, .0079),
        ("Hell's Kitchen", .088, 40.7622, -73.9914, .0036, .0039),
        ("East Village", .086, 40.7268, -73.9838, .0030, .0040),
        ("Upper East Side", .081, 40.7729, -73.9547, .0066, .0055),
        ("Midtown", .073, 40.7546, -73.9758, .0064, .0080),
        ("East Harlem", .053, 40.7958, -73.9427, .0066, .0049),
        ("Chelsea", .053, 40.7446, -73.9981, .0040, .0039),
        ("Lower East Side", .042, 40.7185, -73.9875, .0031, .0032),
        ("Washington Heights", .042, 40.8446, -73.9385, .0077, .0048),
        ("West Village", .038, 40.7342, -74.0041, .0028, .0026),
        ("Financial District", .034, 40.7069, -74.0093, .0017, .0031),
        ("Murray Hill", .021, 40.7474, -73.9761, .0019, .0028),
        ("Kips Bay", .020, 40.7419, -73.9794, .0022, .0023),
        ("Chinatown", .018, 40.7157, -73.9938, .0016, .0030)),
    "Queens": (
        ("Astoria", .161, 40.7646, -73.9201, .0048, .0068),
        ("Long Island City", .094, 40.7521, -73.9382, .0063, .0097),
        ("Flushing", .072, 40.7535, -73.8184, .0107, .0116),
        ("Ridgewood", .071, 40.7042, -73.9056, .0040, .0060),
        ("Sunnyside", .060, 40.7422, -73.9208, .0036, .0043),
        ("Ditmars Steinway", .057, 40.7752, -73.9101, .0034, .0063),
        ("Jamaica", .041, 40.6842, -73.7879, .0124, .0136),
        ("Woodside", .041, 40.7462, -73.9029, .0043, .0053),
        ("Elmhurst", .039, 40.7396, -73.8791, .0050, .0056),
        ("East Elmhurst", .034, 40.7629, -73.8794, .0043, .0088),
        ("Jackson Heights", .034, 40.7514, -73.8816, .0023, .0098),
        ("Forest Hills", .030, 40.7216, -73.8467, .0077, .0067),
        ("Rego Park", .021, 40.7274, -73.8620, .0036, .0048)),
    "Staten Island": (
        ("Tompkinsville", .121, 40.6334, -74.0880, .0030, .0054),
        ("St. George", .115, 40.6432, -74.0825, .0033, .0030),
        ("Stapleton", .067, 40.6326, -74.0780, .0030, .0030),
        ("Concord", .067, 40.6031, -74.0863, .0037, .0039),
        ("Arrochar", .067, 40.5933, -74.0749, .0032, .0079),
        ("Randall Manor", .061, 40.6315, -74.1235, .0043, .0068),
        ("West Brighton", .061, 40.6318, -74.1168, .0030, .0054),
        ("Clifton", .036, 40.6191, -74.0821, .0044, .0058),
        ("Great Kills", .024, 40.5499, -74.1481, .0045, .0086),
        ("Arden Heights", .024, 40.5524, -74.1823, .0080, .0100)),
}

# --- who lists them, and how they are booked ------------------------------------------------

# Row-weighted shares of calculated_host_listings_count (a host's listings city-wide).
HOST_LISTING_COUNTS: dict[int, float] = {
    1: .6645, 2: .1344, 3: .0587, 4: .0285, 5: .0180, 6: .0113, 7: .0083, 8: .0084, 9: .0052,
    10: .0035, 12: .0056, 16: .0095, 30: .01325, 60: .0085, 120: .0114, 232: .00445, 327: .00655,
}
SAMPLED_FRACTION = 0.41  # the sample is ~41% of the city, so a host shows ~41% of its listings
QUANTILES = (0, .1, .25, .5, .75, .9, .95, 1)
LISTING_IDS = (2539, 3.38e6, 9.39e6, 19.52e6, 29.13e6, 33.99e6, 35.28e6, 36.49e6)  # at QUANTILES
HOST_IDS = (2571, 1.98e6, 7.85e6, 31.1e6, 106.8e6, 213.1e6, 242.1e6, 274.3e6)  # at QUANTILES
LISTING_AGE_MONTHS = (130, 54, 42, 24, 12, 4, 2, 0.1)  # ids grow with time, so age follows id
MINIMUM_NIGHTS: dict[int, float] = {
    1: .2624, 2: .2398, 3: .16545, 4: .0664, 5: .0604, 6: .01535, 7: .04275, 10: .00915,
    14: .01085, 15: .0059, 20: .00505, 21: .0026, 25: .0017, 28: .0038, 29: .0065, 30: .077,
    31: .00375, 45: .00085, 60: .0016, 90: .00195, 120: .00065, 180: .0011, 365: .0007, 1000: .0001,
}
AVAILABILITY_ZERO_SHARE = 0.3588
AVAILABILITY_DECILES = (1, 13, 38, 73, 109, 167, 221, 280, 324, 352, 365)  # of non-zero days
SNAPSHOT, FIRST_REVIEW = np.datetime64("2019-07-08"), np.datetime64("2011-03-28")
NEVER_REVIEWED_SHARE = 0.17  # plus most listings younger than a few months
DORMANT_SHARE, QUIET_SKEW, QUIET_MONTHS = 0.45, 0.5, 54.0  # listings that stopped being booked
REVIEW_RATE_MEDIAN, REVIEW_RATE_SD, REVIEW_RATE_MAX = 1.1, 1.1, 8.0  # per month while booked

# --- what they cost: effects add up on the log scale, then log-normal noise -------------------

ROOM_LOG_PRICE: dict[str, float] = {
    "Entire home/apt": 5.46, "Private room": 4.66, "Shared room": 4.36,
}
BOROUGH_LOG_PRICE: dict[str, float] = {
    "Bronx": 0.05, "Brooklyn": 0.10, "Manhattan": 0.22, "Queens": 0.04, "Staten Island": 0.08,
}
MIDTOWN = (40.758, -73.9855)
DISTANCE_ELASTICITY = -0.33  # per log(1 + km from midtown), fitted on the sample
PRICE_NOISE_SD = 0.34
PREMIUM_SHARE, PREMIUM_SCALE = 0.13, 0.65  # the heavy right tail: 0.56% of the sample > $1,000
ZERO_PRICE_RATE, TOP_PRICE_RATE, OUTSIDE_BOX_RATE = 0.00025, 0.00005, 0.001
TOP_PRICE = 10_000
OUTLIERS_FROM_ROWS = 2_000
MIN_ROWS_PER_BOROUGH, GUARANTEE_FROM_ROWS = 5, 100
MISSING_TEXT_RATE = 0.00035  # the sample has 7 listings without a name, 8 without a host name

# Title parts as (text, weight, log-price effect); effects follow the sample's price residuals.
Word = tuple[str, float, float]
ADJECTIVES: tuple[Word, ...] = (
    ("", .26, 0), ("Cozy", .12, -.10), ("Sunny", .08, -.04), ("Spacious", .09, .03),
    ("Luxury", .04, .25), ("Bright", .05, .02), ("Charming", .05, 0), ("Beautiful", .07, 0),
    ("Modern", .06, .07), ("Quiet", .04, -.06), ("Huge", .03, .08), ("Renovated", .02, 0),
    ("Cheap", .03, -.15), ("Elegant", .03, .12),
)
UNITS: dict[str, tuple[Word, ...]] = {
    "Entire home/apt": (
        ("Apartment", .28, 0), ("Studio", .15, -.15), ("1BR Apartment", .14, 0),
        ("2 Bedroom Apartment", .09, .22), ("3 Bedroom Apartment", .03, .38), ("Loft", .08, .18),
        ("Penthouse", .02, .40), ("Duplex", .04, .25), ("Townhouse", .03, .22),
        ("Brownstone Apartment", .06, .05), ("Garden Apartment", .08, .04)),
    "Private room": (
        ("Private room", .40, 0), ("Room", .22, -.04), ("Bedroom", .18, 0),
        ("Master Bedroom", .10, .10), ("Room with Private Bath", .06, .12),
        ("Small room", .04, -.15)),
    "Shared room": (
        ("Shared room", .50, 0), ("Bunk bed", .20, -.15), ("Hostel bed", .12, -.15),
        ("Couch", .08, -.20), ("Shared loft", .10, .05)),
}
EXTRAS: tuple[Word, ...] = (
    ("", .66, 0), (" near subway", .10, -.05), (" by the Park", .09, .05),
    (" with View", .05, .13), (" w/ Garden", .04, .05), (" 15 min to Midtown", .06, -.08),
)
HOST_FIRST_NAMES = (
    "David", "Michael", "John", "Alex", "Daniel", "Maria", "Sarah", "Chris", "Jessica", "Mike",
    "Anna", "Andrew", "Laura", "Melissa", "Jennifer", "Adam", "Jonathan", "Kara", "James", "Emily",
    "Robert", "Nicole", "Kevin", "Lisa", "Carlos", "Ana", "Jason", "Rachel", "Mark", "Elena", "Sam",
    "Karen", "Tom", "Julia", "Brian", "Natalie", "Eric", "Sophie", "Paul", "Olga", "Ming", "Fatima",
    "Yuki", "Kwame", "Priya", "Luis", "Ivan", "Aisha", "Omar", "Grace",
)
HOST_COMPANIES = (
    "Harbor Stays", "Metro Suites (NYC)", "Urban Keys", "Bridgeview Homes", "Park Avenue Rentals",
)
COMPANY_MIN_LISTINGS = 100


def generate_listings(rows: int = 20_000, seed: int = 42) -> pd.DataFrame:
    """Listings with the real table's columns, dtypes and distributions.

    Same (rows, seed), same frame, so a run on synthetic data is as repeatable as one on a file.
    From 100 rows up every borough keeps at least five clean listings, so the stratified
    train/validation/test split never fails on a small frame; from 2,000 rows up there is at
    least one $0, one $10,000 and one out-of-town listing, so cleaning always has work to do.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rng = np.random.default_rng(seed)
    borough = _draw(rng, [BOROUGH_SHARES[b] for b in BOROUGHS], rows)
    kept_clean = (_guarantee_boroughs(rng, borough) if rows >= GUARANTEE_FROM_ROWS
                  else np.empty(0, dtype=np.int64))
    room = _draw_within(rng, borough, [ROOM_TYPE_SHARES[b] for b in BOROUGHS])

    hoods = [n for b in BOROUGHS for n in NEIGHBOURHOODS[b]]
    first_hood = np.cumsum([0] + [len(NEIGHBOURHOODS[b]) for b in BOROUGHS])[:-1]
    hood = first_hood[borough] + _draw_within(
        rng, borough, [[n[1] for n in NEIGHBOURHOODS[b]] for b in BOROUGHS])
    lat_mid, lon_mid, lat_sd, lon_sd = (np.array([n[i] for n in hoods]) for i in range(2, 6))
    bounds = np.array([BOROUGH_BOUNDS[b] for b in BOROUGHS])
    latitude = np.clip(lat_mid[hood] + lat_sd[hood] * _bounded_normal(rng, rows),
                       bounds[borough, 0], bounds[borough, 1])
    longitude = np.clip(lon_mid[hood] + lon_sd[hood] * _bounded_normal(rng, rows),
                        bounds[borough, 2], bounds[borough, 3])

    sorted_ids, id_quantile = _unique_ids(rng, rows, LISTING_IDS)
    shuffle = rng.permutation(rows)
    listing_id = sorted_ids[shuffle]
    age_months = np.interp(id_quantile[shuffle], QUANTILES, LISTING_AGE_MONTHS)
    host_id, host_name, host_listings = _hosts(rng, rows)
    hood_names = [n[0] for n in hoods]
    name, name_effect = _titles(rng, room, borough, hood, hood_names)

    km_from_midtown = np.hypot((latitude - MIDTOWN[0]) * 111.0, (longitude - MIDTOWN[1]) * 84.3)
    log_price = (np.array([ROOM_LOG_PRICE[r] for r in ROOM_TYPES])[room]
                 + np.array([BOROUGH_LOG_PRICE[b] for b in BOROUGHS])[borough]
                 + DISTANCE_ELASTICITY * np.log1p(km_from_midtown) + name_effect
                 + rng.normal(0.0, PRICE_NOISE_SD, rows)
                 + (rng.random(rows) < PREMIUM_SHARE) * rng.exponential(PREMIUM_SCALE, rows))
    price = np.clip(np.rint(np.exp(log_price)), 10, TOP_PRICE - 1).astype(np.int64)
    price[kept_clean] = np.clip(price[kept_clean], 10, 350)

    free, top, outside = _outlier_rows(rng, rows, kept_clean)
    price[free], price[top] = 0, TOP_PRICE
    west = rng.random(len(outside)) < 0.5  # New Jersey side, or south of Staten Island
    longitude[outside[west]] = NYC_BOX[2] - rng.uniform(0.005, 0.05, np.count_nonzero(west))
    latitude[outside[~west]] = NYC_BOX[0] - rng.uniform(0.005, 0.03, np.count_nonzero(~west))

    reviews, per_month, last_review = _reviews(rng, age_months)
    nights = np.array(list(MINIMUM_NIGHTS))[_draw(rng, list(MINIMUM_NIGHTS.values()), rows)]
    available = np.rint(np.interp(rng.random(rows), np.linspace(0, 1, 11), AVAILABILITY_DECILES))
    available[rng.random(rows) < AVAILABILITY_ZERO_SHARE] = 0
    name[rng.random(rows) < MISSING_TEXT_RATE] = None
    host_name[rng.random(rows) < MISSING_TEXT_RATE] = None

    columns = {
        "id": listing_id, "name": name, "host_id": host_id, "host_name": host_name,
        "neighbourhood_group": np.array(BOROUGHS, dtype=object)[borough],
        "neighbourhood": np.array(hood_names, dtype=object)[hood],
        "latitude": latitude.round(5), "longitude": longitude.round(5),
        "room_type": np.array(ROOM_TYPES, dtype=object)[room], "price": price,
        "minimum_nights": nights, "number_of_reviews": reviews, "last_review": last_review,
        "reviews_per_month": per_month, "calculated_host_listings_count": host_listings,
        "availability_365": available,
    }
    return pd.DataFrame(
        {c: pd.Series(columns.pop(c), dtype=_dtype(c), copy=False) for c in COLUMNS}, copy=False)


def _dtype(column: str) -> str:
    """The dtype `pd.read_csv` gives the real file, so a CSV round trip changes nothing."""
    if column in INTEGER_COLUMNS:
        return "int64"
    return "float64" if column in FLOAT_COLUMNS else "str"


def _draw(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _draw_within(rng: np.random.Generator, group: np.ndarray,
                 weights: Sequence[Sequence[float]]) -> np.ndarray:
    """One draw per row from weights that depend on the row's group (its borough, its room)."""
    u, codes = rng.random(len(group)), np.zeros(len(group), dtype=np.int64)
    for g, w in enumerate(weights):
        cumulative = np.cumsum(w) / np.sum(w)
        in_group = group == g
        codes[in_group] = np.minimum(np.searchsorted(cumulative, u[in_group], side="right"),
                                     len(w) - 1)
    return codes


def _bounded_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Keeps a neighbourhood's listings near its centre: no 5-sigma stray into the river."""
    return np.clip(rng.standard_normal(size), -2.5, 2.5)


def _unique_ids(rng: np.random.Generator, n: int,
                at_quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing ids that follow the sample's quantiles, and the quantile of each.

    Stratified quantiles make ids unique at any size without a set or a retry loop.
    """
    step = np.arange(n)
    quantile = (step + rng.random(n)) / max(n, 1)
    ids = np.interp(quantile, QUANTILES, at_quantiles).astype(np.int64)
    return (np.maximum.accumulate(ids - step) + step if n else ids), quantile


def _guarantee_boroughs(rng: np.random.Generator, borough: np.ndarray) -> np.ndarray:
    """Moves listings from the largest borough to short ones; returns rows to keep clean.

    Stratification needs every borough in every split. The rows returned (five per borough)
    stay inside the price range and the box, so they survive cleaning.
    """
    for b in range(len(BOROUGHS)):
        deficit = MIN_ROWS_PER_BOROUGH - np.count_nonzero(borough == b)
        if deficit > 0:
            largest = np.argmax(np.bincount(borough, minlength=len(BOROUGHS)))
            donors = np.flatnonzero(borough == largest)
            borough[rng.choice(donors, size=deficit, replace=False)] = b
    return np.concatenate([np.flatnonzero(borough == b)[:MIN_ROWS_PER_BOROUGH]
                           for b in range(len(BOROUGHS))])


def _outlier_rows(rng: np.random.Generator, rows: int,
                  kept_clean: np.ndarray) -> tuple[np.ndarray, ...]:
    """Disjoint rows for $0 prices, $10,000 prices and coordinates outside the city."""
    def count(rate: float) -> int:
        return max(round(rows * rate), 1 if rows >= OUTLIERS_FROM_ROWS else 0)

    sizes = [count(ZERO_PRICE_RATE), count(TOP_PRICE_RATE), count(OUTSIDE_BOX_RATE)]
    eligible = np.ones(rows, dtype=bool)
    eligible[kept_clean] = False
    candidates = np.flatnonzero(eligible)
    chosen = rng.choice(candidates, size=min(sum(sizes), len(candidates)), replace=False)
    return tuple(np.split(chosen, np.cumsum(sizes)[:-1]))


def _hosts(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host id, host name and the host's city-wide listing count, per row.

    A host with k listings in the city shows about 41% of them here, as in the sample, so the
    calculated count is never below the host's rows in the frame; big hosts are companies.
    """
    listings = np.array(list(HOST_LISTING_COUNTS))[
        _draw(rng, list(HOST_LISTING_COUNTS.values()), rows)]
    order = np.argsort(listings, kind="stable")
    by_count = listings[order]
    block_start = np.searchsorted(by_count, by_count, side="left")
    per_host = np.ceil(by_count * SAMPLED_FRACTION).astype(np.int64)
    key = block_start + (np.arange(rows) - block_start) // per_host  # sorted, one per host
    host = np.empty(rows, dtype=np.int64)
    host[order] = np.cumsum(np.r_[False, key[1:] != key[:-1]]) if rows else key
    n_hosts = int(host.max()) + 1 if rows else 0
    host_ids = _unique_ids(rng, n_hosts, HOST_IDS)[0][rng.permutation(n_hosts)]
    listings_of_host = np.zeros(n_hosts, dtype=np.int64)
    listings_of_host[host] = listings
    popularity = 1.0 / (np.arange(len(HOST_FIRST_NAMES)) + 8.0)  # a few first names are common
    name_code = np.where(listings_of_host >= COMPANY_MIN_LISTINGS,
                         len(HOST_FIRST_NAMES) + rng.integers(len(HOST_COMPANIES), size=n_hosts),
                         _draw(rng, list(popularity), n_hosts))
    names = np.array(HOST_FIRST_NAMES + HOST_COMPANIES, dtype=object)
    return host_ids[host], names[name_code[host]], listings


def _titles(rng: np.random.Generator, room: np.ndarray, borough: np.ndarray, hood: np.ndarray,
            hood_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Listing titles and the log-price effect of their words.

    Hosts advertise what they charge for ("Luxury", "Penthouse", "Shared"), so the title
    carries price signal beyond the room type: the words are drawn first, the price follows.
    Each distinct title is built once, so a million rows cost a few thousand string joins.
    """
    rows = len(room)
    units = [u for r in ROOM_TYPES for u in UNITS[r]]
    first_unit = np.cumsum([0] + [len(UNITS[r]) for r in ROOM_TYPES])[:-1]
    adjective = _draw(rng, [a[1] for a in ADJECTIVES], rows)
    unit_weights = [[u[1] for u in UNITS[r]] for r in ROOM_TYPES]
    unit = first_unit[room] + _draw_within(rng, room, unit_weights)
    extra = _draw(rng, [e[1] for e in EXTRAS], rows)
    places = hood_names + list(BOROUGHS)
    place = np.where(rng.random(rows) < 0.8, hood, len(hood_names) + borough)  # Harlem/Manhattan
    layout = rng.integers(2, size=rows)  # "Sunny Loft in Bushwick" or "Sunny Bushwick Loft"
    shape = (len(ADJECTIVES), len(units), len(places), len(EXTRAS), 2)
    code = np.ravel_multi_index((adjective, unit, place, extra, layout), shape)
    used = np.flatnonzero(np.bincount(code, minlength=int(np.prod(shape))))
    title_of_code = np.zeros(int(np.prod(shape)), dtype=np.int64)
    title_of_code[used] = np.arange(len(used))
    titles = []
    for a, u, p, e, in_form in zip(*np.unravel_index(used, shape)):
        words = ((ADJECTIVES[a][0], units[u][0], "in", places[p]) if in_form
                 else (ADJECTIVES[a][0], places[p], units[u][0]))
        titles.append(" ".join(w for w in words if w) + EXTRAS[e][0])
    effect = (np.array([a[2] for a in ADJECTIVES])[adjective]
              + np.array([u[2] for u in units])[unit] + np.array([e[2] for e in EXTRAS])[extra])
    return np.array(titles, dtype=object)[title_of_code[code]], effect


def _reviews(rng: np.random.Generator,
             age_months: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Review count, reviews per month and last review date, missing together when unreviewed.

    Young listings are the ones still waiting for a first review; listings that stopped being
    booked keep an old last review and a low monthly rate, which gives the sample's long tail
    of dates back to 2011 while most last reviews fall in 2019.
    """
    rows = len(age_months)
    reviewed = rng.random(rows) >= NEVER_REVIEWED_SHARE + 0.5 * np.exp(-age_months / 3.0)
    months = np.maximum(age_months * rng.uniform(0.5, 1.0, rows), 0.1)  # since first review
    quiet = np.minimum(months * rng.random(rows) ** QUIET_SKEW, QUIET_MONTHS)
    booked = np.where(rng.random(rows) < DORMANT_SHARE, months - quiet, months)
    rate = np.minimum(rng.lognormal(np.log(REVIEW_RATE_MEDIAN), REVIEW_RATE_SD, rows),
                      REVIEW_RATE_MAX)
    count = np.where(reviewed, np.maximum(rng.poisson(rate * booked), 1), 0)
    per_month = np.where(reviewed, np.maximum(np.round(count / np.maximum(months, 1.0), 2), 0.01),
                         np.nan)
    gap = np.minimum(rng.exponential(30.44 / rate), booked * 30.44)
    days_ago = np.minimum((months - booked) * 30.44 + gap,
                          (SNAPSHOT - FIRST_REVIEW).astype(int)).astype(np.int64)
    calendar = (SNAPSHOT - np.arange(days_ago.max(initial=0) + 1).astype("timedelta64[D]"))
    dates = calendar.astype(str).astype(object)[days_ago]
    dates[~reviewed] = None
    return count, per_month, dates
