"""Configuration: flags > environment > TOML > defaults; the password never shows."""

from __future__ import annotations

import subprocess

import pytest

from mailconsole.engine.config import ConfigError, EngineConfig, load_config, mask_transport
from mailconsole.engine.transports import MaildirTransport, NullTransport, SMTPTransport, make_transport

from .conftest import MAILCONSOLE


def test_precedence(tmp_path):
    toml = tmp_path / "e.toml"
    toml.write_text('[engine]\ntransport = "smtp://toml:25"\nworkers = 3\nrate = 10.0\npassword = "from-toml"\n')
    env = {"MAILCONSOLE_TRANSPORT": "smtp://env:25", "MAILCONSOLE_SMTP_PASSWORD": "from-env"}
    cfg = load_config(flags={"workers": 5, "transport": None}, env=env, toml_path=toml)
    assert (cfg.transport, cfg.workers, cfg.rate, cfg.password) == ("smtp://env:25", 5, 10.0, "from-env")
    cfg = load_config(flags={"transport": "null:"}, env=env, toml_path=toml)
    assert cfg.transport == "null:"
    assert load_config(env={}).transport == "null:"


def test_bad_configuration_is_explained(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nwokers = 3\n")
    with pytest.raises(ConfigError, match="unknown key.*wokers"):
        load_config(env={}, toml_path=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(env={}, toml_path=tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="workers"):
        EngineConfig(workers=0)
    for url, msg in [("ftp://x", "unknown transport"), ("smtp://h?starttls=maybe", "starttls"), ("smtp://h?x=1", "unknown option"), ("smtp://:25", "no host")]:
        with pytest.raises(ConfigError, match=msg):
            make_transport(EngineConfig(transport=url))


def test_transports_by_url(tmp_path):
    assert isinstance(make_transport(EngineConfig()), NullTransport)
    assert isinstance(make_transport(EngineConfig(transport=f"maildir:{tmp_path}/box")), MaildirTransport)
    t = make_transport(EngineConfig(transport="smtps://u:p%40ss@mail.example"))
    assert isinstance(t, SMTPTransport)
    assert (t.settings.port, t.settings.implicit_tls, t.settings.username, t.settings.password) == (465, True, "u", "p@ss")
    t = make_transport(EngineConfig(transport="smtp://relay.example?starttls=off", password="envpw"))
    assert (t.settings.port, t.settings.starttls, t.settings.password) == (25, "off", "envpw")


def test_masking():
    assert mask_transport("smtp://user:secret@h:587?starttls=required") == "smtp://user:***@h:587?starttls=required"
    assert mask_transport("smtp://h:25") == "smtp://h:25"
    assert mask_transport("maildir:/x") == "maildir:/x"
    cfg = EngineConfig(transport="smtp://u:topsecret@h", password="alsosecret")
    assert "secret" not in repr(cfg) and "secret" not in cfg.masked_transport


def test_serve_rejects_a_bad_transport_in_one_line(tmp_path):
    proc = subprocess.run(
        [MAILCONSOLE, "--db", str(tmp_path / "s.db"), "serve", "--transport", "smtp://u:hunter2@h?starttls=maybe"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "starttls" in proc.stderr and "hunter2" not in proc.stderr


@pytest.mark.parametrize("key, value, words", [
    ("workers", 0, "workers must be between 1 and 1,000"),
    ("workers", 1001, "workers must be between 1 and 1,000"),
    ("workers", True, "workers must be a whole number"),
    ("workers", 2.5, "workers must be a whole number"),
    ("workers", "8", "workers must be a whole number"),
    ("rate", 0, "rate must be between"),
    ("rate", -5.0, "rate must be between"),
    ("rate", float("nan"), "rate must be between"),
    ("rate", float("inf"), "rate must be between"),
    ("batch", 1001, "batch must be between 1 and 1,000"),
    ("shutdown_grace", 60.0, "shutdown_grace must be between 0 and 4"),
    ("command_timeout", float("nan"), "command_timeout must be between"),
    ("lease_seconds", -1.0, "lease_seconds must be between"),
    ("transport", 5, "transport must be a string"),
    ("heartbeat_interval", 10.0, "heartbeat_interval must be between 0.01 and 2.5"),
    ("poll_interval", 5.0, "poll_interval must be between 0.001 and 1"),
    ("lease_seconds", 1.0, "lease_seconds must be at least 3 heartbeat intervals"),
])
def test_every_value_is_bounded(key, value, words):
    with pytest.raises(ConfigError, match=words):
        EngineConfig(**{key: value})


def test_the_bounds_themselves_are_accepted():
    cfg = EngineConfig(workers=1000, rate=0.001, batch=1000, shutdown_grace=0)
    assert (cfg.workers, cfg.rate, cfg.batch) == (1000, 0.001, 1000)
    assert EngineConfig(workers=1, rate=1_000_000).rate == 1_000_000


@pytest.mark.parametrize("toml, words", [
    ("workers = 0", "workers must be between 1 and 1,000"),
    ("workers = 100000", "workers must be between 1 and 1,000"),
    ('workers = "many"', "workers must be a whole number"),
    ("rate = nan", "rate must be between"),
    ("rate = inf", "rate must be between"),
    ("rate = -1", "rate must be between"),
    ("shutdown_grace = 30", "shutdown_grace must be between 0 and 4"),
])
def test_the_configuration_file_is_checked_in_one_line(tmp_path, toml, words):
    path = tmp_path / "engine.toml"
    path.write_text(f"[engine]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=words):
        load_config(env={}, toml_path=path)
    proc = subprocess.run([MAILCONSOLE, "--db", str(tmp_path / "s.db"), "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "s.db").exists()  # refused before the store is touched


@pytest.mark.parametrize("flags, words", [
    (["--workers", "0"], "workers must be between 1 and 1,000"),
    (["--workers", "5000"], "workers must be between 1 and 1,000"),
    (["--workers", "lots"], "--workers must be a whole number (got 'lots')"),
    (["--workers", "1.5"], "--workers must be a whole number"),
    (["--rate", "nan"], "rate must be between"),
    (["--rate", "inf"], "rate must be between"),
    (["--rate", "0"], "rate must be between"),
    (["--rate", "-3"], "rate must be between"),
    (["--rate", "fast"], "--rate must be a number"),
    (["--batch", "0"], "batch must be between 1 and 1,000"),
])
def test_serve_flags_are_checked_in_one_line(tmp_path, flags, words):
    proc = subprocess.run([MAILCONSOLE, "--db", str(tmp_path / "s.db"), "serve", *flags],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
