"""mailconsole: an operator's console for a bulk e-mail sender."""

__version__ = "0.1.0"
