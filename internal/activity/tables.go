package activity

import (
	"embed"

	"steward/internal/registry"
	"steward/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are this package's schema changes (module "activity").
func Migrations() store.Migrations {
	return store.Embedded("activity", migrationFS)
}

// anonColumns are the columns of anonymous events: none holds personal
// data once the day's salt is destroyed.
var anonColumns = []string{"id", "site", "at", "type", "page", "query", "referrer", "search", "link", "asset", "name", "props", "duration_ms", "country", "region", "city", "browser", "os", "screen"}

// Tables declares this package's tables to the personal-data registry.
func Tables() []registry.Table {
	anon := []registry.Column{{Name: "visitor"}}
	for _, c := range anonColumns {
		anon = append(anon, registry.Column{Name: c})
	}
	member := []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "policy_version"}, {Name: "site"},
		{Name: "at", Field: FieldViewTime}, {Name: "type"}, {Name: "duration_ms", Field: FieldViewTime}}
	for _, c := range sealedColumns {
		member = append(member, registry.Column{Name: c.Sealed, Field: c.Field, Sensitive: true})
	}
	for _, c := range sealedColumns {
		member = append(member, registry.Column{Name: c.Plain, Field: c.Field, Legacy: true})
	}
	return []registry.Table{
		{
			Name: "activity_salts", Owner: "activity", Origin: registry.System,
			Columns: []registry.Column{{Name: "site"}, {Name: "day"}, {Name: "salt"}, {Name: "created_at"}, {Name: "expires_at"}},
			Description: "Secret daily salts of the visitor hash, one per site-local day; each is deleted once its day has ended, " +
				"so hashes of different days cannot be linked or recomputed from an IP.",
		},
		{
			Name: "activity_events", Owner: "activity", Origin: registry.Observed, Columns: anon,
			Dated: registry.Dating{Column: "at", Field: FieldPage},
			Description: "Anonymous page views and events (cookieless analytics). No IP, user agent or account is stored; the visitor " +
				"column is a keyed hash valid for one site-local day, whose key is destroyed when the day ends, after which no row " +
				"relates to an identifiable person. Deleted after the policy's retention for activity.",
		},
		{
			Name: "activity_member_events", Owner: "activity", Origin: registry.Observed,
			Dated:   registry.Dating{Column: "at", Field: FieldPage},
			Dataset: "activity", SubjectColumn: "subject_id", Source: "tracker", PolicyVersionColumn: "policy_version",
			Columns: member,
			Description: "Page views and events of signed-in members, linked to their account only where the policy's activity " +
				"category says link_to_account and the member's state allows it. Each value is sealed with the member's key for its " +
				"category; the time, type, duration and site stay in the clear. Part of the member's export; erased with them.",
		},
		{
			Name: "activity_seen", Owner: "activity", Origin: registry.System,
			Columns: []registry.Column{{Name: "site"}, {Name: "day"}, {Name: "k"}},
			Description: "Hashes of (day, visitor hash, dimension, value) already counted, so unique visitors are exact; " +
				"deleted with the day's salt.",
		},
		{
			Name: "activity_daily", Owner: "activity", Origin: registry.Derived, CountedFrom: "activity_events",
			Columns: []registry.Column{{Name: "site"}, {Name: "dim"}, {Name: "day"}, {Name: "value"}, {Name: "views"}, {Name: "visitors"}, {Name: "duration_ms"}, {Name: "durations"}},
			Description: "Aggregate counts per site-local day and dimension (pages, referrers, search terms, countries, browsers...). " +
				"No visitor hash, no subject.",
		},
		{
			Name: "activity_rollup_state", Owner: "activity", Origin: registry.System,
			Columns:     []registry.Column{{Name: "name"}, {Name: "last_id"}},
			Description: "The id of the last event of each event table the rollups count, and the next block to build per site and level.",
		},
		{
			Name: "activity_pending", Owner: "activity", Origin: registry.System,
			Columns: []registry.Column{{Name: "writer"}, {Name: "batch"}, {Name: "event_ids"}, {Name: "member_ids"}, {Name: "created_at"}},
			Description: "Ids of committed event batches whose rollups a PostgreSQL writer still holds in memory (about a second); " +
				"deleted when the rollups are written.",
		},
		{
			Name: "activity_blocks", Owner: "activity", Origin: registry.Derived, CountedFrom: "activity_events",
			Columns: []registry.Column{{Name: "site"}, {Name: "dim"}, {Name: "level"}, {Name: "block"}, {Name: "value"}, {Name: "views"},
				{Name: "visitors"}, {Name: "duration_ms"}, {Name: "durations"}},
			Description: "Sums of activity_daily over aligned blocks of 2 to 256 finished days, for fast reports over long ranges.",
		},
		{
			Name: "activity_monthly", Owner: "activity", Origin: registry.Derived, CountedFrom: "activity_events",
			Columns: []registry.Column{{Name: "site"}, {Name: "dim"}, {Name: "month"}, {Name: "value"}, {Name: "views"}, {Name: "visitors"},
				{Name: "duration_ms"}, {Name: "durations"}, {Name: "peak"}},
			Description: "What stays of activity_daily past the activity retention where the policy keeps monthly aggregates: counts " +
				"per site-local month and dimension. Visitors are the month's daily unique visitors summed (visitor-days), not unique " +
				"visitors of the month. In free-text dimensions (pages, referrers, search terms, campaigns, events, links, downloads, " +
				"regions, cities) a value that no day of the month saw k_anonymity different visitors of is merged into \"(other)\", " +
				"so no row relates to a person; peak is the most visitors one day gave the value.",
		},
		{
			Name: "activity_hourly", Owner: "activity", Origin: registry.Derived, CountedFrom: "activity_events",
			Columns:     []registry.Column{{Name: "site"}, {Name: "hour"}, {Name: "views"}, {Name: "visitors"}},
			Description: "Aggregate views and visitors per site-local hour.",
		},
	}
}
