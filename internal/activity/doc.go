// Package activity owns cookieless collection: the tracker script, the
// validation and scrubbing of collected events, the daily salts of the
// visitor hash and their destruction, IP-derived location and user-agent
// families, the group-commit writer that acknowledges an event only once it
// is durably committed, the rollups reports read, the retention of raw
// events, and the events linked to members where the policy says so.
//
// Privacy by construction: the IP address and the user agent reach Collect
// and go no further. A visitor is a 64-bit hash of (the site-day's secret
// salt, site, IP, user agent); the salt lives in activity_salts only while
// its site-local day lasts (plus a few minutes) and is then deleted, so one
// visitor's days cannot be linked. Paths and search terms are scrubbed of
// e-mail addresses, phone numbers and tokens; page URLs keep only utm_*
// parameters and the search parameter; referrers keep scheme, host and
// path. What the policy does not declare (a field, a location granularity)
// is not stored, and the tracker is built not to send it.
package activity
