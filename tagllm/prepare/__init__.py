"""Offline vocabulary preparation: groups from measured co-occurrence and concept knowledge from a
model, written to a vocabulary file for a person to review. Tools, not the serving path: the
`vocab` package (schema and registry) never imports them."""
