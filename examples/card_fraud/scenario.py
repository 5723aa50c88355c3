"""The card-fraud demo world: countries, merchant categories, defect rates and the fraud model.

Everything the generator draws from lives here, so tuning the demo is a change to one file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    code: str
    currency: str
    utc_offset_minutes: int  # fixed offset: the demo ignores daylight saving on purpose
    home_weight: float  # share of customers living here (0: only ever a foreign country)


COUNTRIES: tuple[Country, ...] = (
    Country("GB", "GBP", 0, 0.22),
    Country("IE", "EUR", 0, 0.04),
    Country("FR", "EUR", 60, 0.16),
    Country("DE", "EUR", 60, 0.18),
    Country("ES", "EUR", 60, 0.10),
    Country("IT", "EUR", 60, 0.10),
    Country("NL", "EUR", 60, 0.06),
    Country("US", "USD", -300, 0.14),
    Country("BR", "USD", -180, 0.0),
    Country("IN", "USD", 330, 0.0),
    Country("NG", "USD", 60, 0.0),
    Country("TH", "USD", 420, 0.0),
    Country("AE", "USD", 240, 0.0),
    Country("MX", "USD", -360, 0.0),
)
HOME_COUNTRIES: tuple[Country, ...] = tuple(c for c in COUNTRIES if c.home_weight > 0)

# Units of each currency per euro; amounts are drawn in euros and converted.
EUR_RATES: dict[str, float] = {"EUR": 1.0, "USD": 1.08, "GBP": 0.86}
PHONE_PREFIX: dict[str, str] = {
    "GB": "+44 7", "IE": "+353 8", "FR": "+33 6", "DE": "+49 15", "ES": "+34 6", "IT": "+39 3",
    "NL": "+31 6", "US": "+1 2",
}


@dataclass(frozen=True)
class Category:
    name: str
    weight: float  # share of merchants
    high_risk: bool


CATEGORIES: tuple[Category, ...] = (
    Category("grocery", 0.20, False),
    Category("restaurants", 0.18, False),
    Category("fuel", 0.12, False),
    Category("clothing", 0.10, False),
    Category("travel", 0.10, False),
    Category("pharmacy", 0.05, False),
    Category("electronics", 0.08, True),
    Category("online_services", 0.07, True),
    Category("gaming", 0.06, True),
    Category("jewelry", 0.04, True),
)
HIGH_RISK_CATEGORIES: tuple[str, ...] = tuple(c.name for c in CATEGORIES if c.high_risk)

CHANNELS: tuple[tuple[str, float], ...] = (("pos", 0.60), ("online", 0.32), ("atm", 0.08))
SEGMENTS: tuple[tuple[str, float, float], ...] = (  # name, share, typical credit limit
    ("retail", 0.55, 3_000.0), ("premium", 0.15, 12_000.0),
    ("business", 0.10, 20_000.0), ("student", 0.20, 1_000.0),
)
REASON_CODES: tuple[str, ...] = ("10.4", "10.5", "4837", "4863")

FIRST_NAMES: tuple[str, ...] = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Isla", "Lucas",
    "Mia", "Mateo", "Chloe", "Leon", "Hannah", "Finn", "Lea", "Paul", "Camille", "Hugo",
    "Louise", "Jules", "Lucia", "Pablo", "Martina", "Matteo", "Giulia", "Lorenzo", "Sofia",
    "Francesco", "Sanne", "Daan", "Aoife", "Cian", "Grace", "James", "Ava", "Ethan", "Zoe",
    "Jack", "Freya", "Oscar", "Ines", "Felix", "Clara", "Marco", "Elena", "Sean", "Nora", "Max",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Martin", "Bernard", "Dubois",
    "Thomas", "Robert", "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Garcia", "Lopez",
    "Martinez", "Sanchez", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "deJong", "Jansen",
    "Visser", "Murphy", "Kelly", "Byrne", "Walsh", "Johnson", "Miller", "Davis", "Moore",
    "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker",
    "Adams", "Nelson", "Hill", "Campbell",
)
MERCHANT_WORDS: tuple[str, ...] = (
    "Blue", "Harbor", "North", "Golden", "Silver", "Urban", "Corner", "Prime", "Bright", "Royal",
    "Summit", "River", "Oak", "Maple", "Star", "Metro", "Coastal", "Alpine", "Sunny", "Nova",
)


@dataclass(frozen=True)
class DefectRates:
    """Shares of transactions (per distinct txn) that land in the CSVs with a defect."""

    malformed: float = 0.003
    duplicate: float = 0.01
    late: float = 0.02
    truncated_chargeback: float = 0.005
    # Split of malformed lines over the three kinds, in this order.
    malformed_kinds: tuple[tuple[str, float], ...] = (
        ("field_count", 0.4), ("bad_amount", 0.3), ("bad_timestamp", 0.3),
    )


@dataclass(frozen=True)
class FraudModel:
    """Logistic model that decides `is_fraud` from columns a downstream model can rebuild.

    Tuned so that about 2% of transactions are fraud and a gradient-boosted model that sees
    amount-vs-customer-history, country-vs-home, category, local hour and channel reaches a
    ROC AUC of roughly 0.88-0.92; the `noise_sd` term keeps it well away from 1.0.
    """

    intercept: float = -6.8
    amount_ratio: float = 2.4  # per unit of log(amount / customer's typical amount), above 0
    foreign: float = 2.9
    high_risk: float = 1.4
    night: float = 1.4  # local hour 00-05
    online: float = 0.8
    noise_sd: float = 0.6
    # Behaviour that feeds the model (drawn independently of the label).
    amount_sd: float = 0.45  # log-normal spread around a customer's typical amount
    spike_share: float = 0.03  # share of big-ticket purchases ...
    spike_low: float = 3.0  # ... at 3-10x the customer's typical amount
    spike_high: float = 10.0
    foreign_share: float = 0.06
    night_share: float = 0.08
    new_device_share: float = 0.07


DEFECTS = DefectRates()
FRAUD = FraudModel()
