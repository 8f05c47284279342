"""Asterisk Manager Interface feed: a reconnecting client over panoramisk and a call tracker.

Import from the modules: ``ami.client`` (:class:`AmiClient`, panoramisk), ``ami.calls``
(:class:`CallTracker`), ``ami.settings`` (the settings types, light: the configuration reads them),
``ami.message``, ``ami.causes``, ``ami.errors``. The package itself imports nothing, so reading
the settings does not pull panoramisk into every classic AGI process.
"""
