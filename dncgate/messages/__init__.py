"""Commercial messages: the same check as calls, with the sender port as the originator.

A door (the HTTP API for Asterisk's res_pjsip_messaging, the SMPP proxy, FreeSWITCH's chatplan
through the event socket) hands a :class:`~dncgate.messages.model.Message` to
:class:`~dncgate.messages.service.MessageService`. A message to a recipient is checked by the one
``Gate.check`` (the same ``decide()``, ledger, lists, categories and hours) with its sender port
looked up in the registry (``ports``); a message *to* a registered port is a subscriber's reply,
and a reply that is an opt-out keyword withdraws the consent of the port's entity in the ledger.
"""
