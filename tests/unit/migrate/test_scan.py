"""kurs_migrate.scan: what is found in one file's text and how it is rewritten."""

from __future__ import annotations

from kurs_migrate.scan import Target, scan

KURS = Target("http://kurs:8000")


def test_v6_url_keeps_its_path_and_key() -> None:
    text = 'Let u be "https://v6.exchangerate-api.com/v6/abcdef0123456789abcdef01/history/USD/2024/3/15"\n'
    findings, out = scan(text, KURS)
    assert [(f.kind, f.line, f.column) for f in findings] == [("v6-url", 1, 11)]
    assert out == 'Let u be "http://kurs:8000/v6/abcdef0123456789abcdef01/history/USD/2024/3/15"\n'


def test_kurs_key_replaces_exchangerate_api_keys() -> None:
    text = (
        'url = "https://v6.exchangerate-api.com/v6/OLDKEY123/latest/EUR"\n'
        'exchangerate_api_key = "OLDKEY123"\n'
    )
    findings, out = scan(text, Target("http://kurs:8000", "kurs-key-1"))
    assert [f.kind for f in findings] == ["v6-url", "api-key"]
    assert out == 'url = "http://kurs:8000/v6/kurs-key-1/latest/EUR"\nexchangerate_api_key = "kurs-key-1"\n'


def test_api_key_without_kurs_key_is_reported_only() -> None:
    findings, out = scan("EXCHANGERATE_API_KEY=abcdef0123456789\n", KURS)
    assert [(f.kind, f.replacement) for f in findings] == [("api-key", None)]
    assert out == "EXCHANGERATE_API_KEY=abcdef0123456789\n"


def test_api_endpoint_values_point_at_runas_contract() -> None:
    runa = 'Set settings.api_endpoint to "https://rates.example.org/v1/latest"\n'
    yaml = "api_endpoint: https://rates.example.org/v1/latest\n"
    json_text = '{"api_endpoint": "https://open.er-api.com/v6/latest/USD"}\n'
    for text in (runa, yaml, json_text):
        findings, out = scan(text, KURS)
        assert [f.kind for f in findings] == ["api-endpoint"], text
        assert "http://kurs:8000/runa/v1/rates" in out


def test_open_endpoint_and_legacy_hosts() -> None:
    text = "a = https://open.er-api.com/v6/latest/GBP\nb = https://api.exchangerate-api.com/v4/latest/USD\n"
    findings, out = scan(text, KURS)
    assert [(f.kind, f.replacement) for f in findings] == [
        ("open-url", "http://kurs:8000/v6/latest/GBP"),
        ("legacy-url", None),
    ]
    assert out == "a = http://kurs:8000/v6/latest/GBP\nb = https://api.exchangerate-api.com/v4/latest/USD\n"


def test_already_on_kurs_is_left_alone() -> None:
    text = 'Let api_endpoint be "http://kurs:8000/runa/v1/rates"\n'
    assert scan(text, KURS) == ([], text)
