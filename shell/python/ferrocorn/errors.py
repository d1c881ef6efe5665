"""Exceptions ferrocorn raises into Python, named as gunicorn names them."""


class AppImportError(Exception):
    """The application could not be found or built from the ``APP_MODULE`` given.

    Raised for gunicorn's ``AppImportError`` cases (a missing attribute, an expression
    that is neither a name nor a call with literal arguments, a factory called with the
    wrong arguments, an object that is not callable). A module that cannot be imported
    raises ``ImportError`` instead, as in gunicorn.
    """


class ConfigError(Exception):
    """A setting's value is not acceptable (gunicorn's ``gunicorn.errors.ConfigError``):
    ``cfg.set()`` raises it for an unknown user or group, a missing ``chdir`` directory
    and an unknown ``reload_engine``, where gunicorn's validators raise theirs."""
