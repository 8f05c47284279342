"""FreeSWITCH event-socket (ESL) protocol layer: codec, outbound server, inbound client."""
