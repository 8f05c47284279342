"""Early warning: call facts per originator over sliding windows, rules, and the alerts they raise.

The analytics (signals, windows, rules) turn the call feeds and the gate's own decisions into
:class:`~dncgate.early_warning.alerts.Alert` objects; the enforcement room (cases, notices,
restrictions, suspensions, appeals) consumes them. Nothing here talks to a switch.
"""
