"""Face gallery storage and distribution: enrolment records, consent, versions, erasures.

Only encodings leave this package (as versioned bundles fetched by edges on ``gallery.sync``).
"""
