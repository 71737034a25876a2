"""Federation: nodes that know each other by their signing keys, harvest each other's public records and
search them as one."""
