"""Deployment files: a locked-down mosquitto (per-gateway credentials, ACL, TLS), systemd units."""
