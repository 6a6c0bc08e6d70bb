"""Glue between manverify and SIP servers (Kamailio KEMI: manverify.integrations.kamailio)."""
