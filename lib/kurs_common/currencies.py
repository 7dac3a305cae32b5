"""ISO 4217 currency metadata: names, and the retirement date of codes no longer in use.

Data only. `RETIRED` lists codes that a historical source (the ECB's history) still carries,
with the last day they were legal tender / quoted, so validators can refuse a retired code
after its end date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    code: str
    name: str
    retired_on: dt.date | None = None  # the first day the code was no longer current

    @property
    def active(self) -> bool:
        return self.retired_on is None


_ACTIVE = {
    "AED": "UAE Dirham",
    "AFN": "Afghani",
    "ALL": "Lek",
    "AMD": "Armenian Dram",
    "AOA": "Kwanza",
    "ARS": "Argentine Peso",
    "AUD": "Australian Dollar",
    "AWG": "Aruban Florin",
    "AZN": "Azerbaijan Manat",
    "BAM": "Convertible Mark",
    "BBD": "Barbados Dollar",
    "BDT": "Taka",
    "BGN": "Bulgarian Lev",
    "BHD": "Bahraini Dinar",
    "BIF": "Burundi Franc",
    "BMD": "Bermudian Dollar",
    "BND": "Brunei Dollar",
    "BOB": "Boliviano",
    "BRL": "Brazilian Real",
    "BSD": "Bahamian Dollar",
    "BTN": "Ngultrum",
    "BWP": "Pula",
    "BYN": "Belarusian Ruble",
    "BZD": "Belize Dollar",
    "CAD": "Canadian Dollar",
    "CDF": "Congolese Franc",
    "CHF": "Swiss Franc",
    "CLP": "Chilean Peso",
    "CNY": "Yuan Renminbi",
    "COP": "Colombian Peso",
    "CRC": "Costa Rican Colon",
    "CUP": "Cuban Peso",
    "CVE": "Cabo Verde Escudo",
    "CZK": "Czech Koruna",
    "DJF": "Djibouti Franc",
    "DKK": "Danish Krone",
    "DOP": "Dominican Peso",
    "DZD": "Algerian Dinar",
    "EGP": "Egyptian Pound",
    "ERN": "Nakfa",
    "ETB": "Ethiopian Birr",
    "EUR": "Euro",
    "FJD": "Fiji Dollar",
    "FKP": "Falkland Islands Pound",
    "GBP": "Pound Sterling",
    "GEL": "Lari",
    "GHS": "Ghana Cedi",
    "GIP": "Gibraltar Pound",
    "GMD": "Dalasi",
    "GNF": "Guinean Franc",
    "GTQ": "Quetzal",
    "GYD": "Guyana Dollar",
    "HKD": "Hong Kong Dollar",
    "HNL": "Lempira",
    "HTG": "Gourde",
    "HUF": "Forint",
    "IDR": "Rupiah",
    "ILS": "New Israeli Sheqel",
    "INR": "Indian Rupee",
    "IQD": "Iraqi Dinar",
    "IRR": "Iranian Rial",
    "ISK": "Iceland Krona",
    "JMD": "Jamaican Dollar",
    "JOD": "Jordanian Dinar",
    "JPY": "Yen",
    "KES": "Kenyan Shilling",
    "KGS": "Som",
    "KHR": "Riel",
    "KMF": "Comorian Franc",
    "KPW": "North Korean Won",
    "KRW": "Won",
    "KWD": "Kuwaiti Dinar",
    "KYD": "Cayman Islands Dollar",
    "KZT": "Tenge",
    "LAK": "Lao Kip",
    "LBP": "Lebanese Pound",
    "LKR": "Sri Lanka Rupee",
    "LRD": "Liberian Dollar",
    "LSL": "Loti",
    "LYD": "Libyan Dinar",
    "MAD": "Moroccan Dirham",
    "MDL": "Moldovan Leu",
    "MGA": "Malagasy Ariary",
    "MKD": "Denar",
    "MMK": "Kyat",
    "MNT": "Tugrik",
    "MOP": "Pataca",
    "MRU": "Ouguiya",
    "MUR": "Mauritius Rupee",
    "MVR": "Rufiyaa",
    "MWK": "Malawi Kwacha",
    "MXN": "Mexican Peso",
    "MYR": "Malaysian Ringgit",
    "MZN": "Mozambique Metical",
    "NAD": "Namibia Dollar",
    "NGN": "Naira",
    "NIO": "Cordoba Oro",
    "NOK": "Norwegian Krone",
    "NPR": "Nepalese Rupee",
    "NZD": "New Zealand Dollar",
    "OMR": "Rial Omani",
    "PAB": "Balboa",
    "PEN": "Sol",
    "PGK": "Kina",
    "PHP": "Philippine Peso",
    "PKR": "Pakistan Rupee",
    "PLN": "Zloty",
    "PYG": "Guarani",
    "QAR": "Qatari Rial",
    "RON": "Romanian Leu",
    "RSD": "Serbian Dinar",
    "RUB": "Russian Ruble",
    "RWF": "Rwanda Franc",
    "SAR": "Saudi Riyal",
    "SBD": "Solomon Islands Dollar",
    "SCR": "Seychelles Rupee",
    "SDG": "Sudanese Pound",
    "SEK": "Swedish Krona",
    "SGD": "Singapore Dollar",
    "SHP": "Saint Helena Pound",
    "SLE": "Leone",
    "SOS": "Somali Shilling",
    "SRD": "Surinam Dollar",
    "SSP": "South Sudanese Pound",
    "STN": "Dobra",
    "SVC": "El Salvador Colon",
    "SYP": "Syrian Pound",
    "SZL": "Lilangeni",
    "THB": "Baht",
    "TJS": "Somoni",
    "TMT": "Turkmenistan New Manat",
    "TND": "Tunisian Dinar",
    "TOP": "Pa'anga",
    "TRY": "Turkish Lira",
    "TTD": "Trinidad and Tobago Dollar",
    "TWD": "New Taiwan Dollar",
    "TZS": "Tanzanian Shilling",
    "UAH": "Hryvnia",
    "UGX": "Uganda Shilling",
    "USD": "US Dollar",
    "UYU": "Peso Uruguayo",
    "UZS": "Uzbekistan Sum",
    "VES": "Bolivar Soberano",
    "VND": "Dong",
    "VUV": "Vatu",
    "WST": "Tala",
    "XAF": "CFA Franc BEAC",
    "XCD": "East Caribbean Dollar",
    "XOF": "CFA Franc BCEAO",
    "XPF": "CFP Franc",
    "YER": "Yemeni Rial",
    "ZAR": "Rand",
    "ZMW": "Zambian Kwacha",
    "ZWG": "Zimbabwe Gold",
}

# Codes replaced or withdrawn, with the first day they no longer applied (ISO 4217 amendment
# or the day the ECB stopped quoting them because the country adopted the euro / redenominated).
_RETIRED = {
    "CYP": ("Cyprus Pound", dt.date(2008, 1, 1)),
    "EEK": ("Kroon", dt.date(2011, 1, 1)),
    "HRK": ("Kuna", dt.date(2023, 1, 1)),
    "LTL": ("Lithuanian Litas", dt.date(2015, 1, 1)),
    "LVL": ("Latvian Lats", dt.date(2014, 1, 1)),
    "MTL": ("Maltese Lira", dt.date(2008, 1, 1)),
    "ROL": ("Romanian Leu (old)", dt.date(2005, 7, 1)),
    "SIT": ("Tolar", dt.date(2007, 1, 1)),
    "SKK": ("Slovak Koruna", dt.date(2009, 1, 1)),
    "TRL": ("Turkish Lira (old)", dt.date(2005, 1, 1)),
    "BGL": ("Lev (old)", dt.date(1999, 7, 5)),
}

CURRENCIES: dict[str, CurrencyInfo] = {
    **{code: CurrencyInfo(code, name) for code, name in _ACTIVE.items()},
    **{code: CurrencyInfo(code, name, retired) for code, (name, retired) in _RETIRED.items()},
}

# Crypto assets the market sources quote; not ISO 4217 but served under their tickers.
CRYPTO = {"BTC": "Bitcoin", "ETH": "Ether", "USDT": "Tether", "USDC": "USD Coin"}


def is_iso_code(code: str) -> bool:
    """Three upper-case ASCII letters."""
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def lookup(code: str) -> CurrencyInfo | None:
    return CURRENCIES.get(code)


def name_of(code: str) -> str:
    info = CURRENCIES.get(code)
    if info is not None:
        return info.name
    return CRYPTO.get(code, code)
