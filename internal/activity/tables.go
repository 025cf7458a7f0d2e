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

// eventColumns are the columns both event tables share; fields is whether
// to name the policy field each holds (linked events are personal data,
// anonymous ones hold none once their day's salt is destroyed).
func eventColumns(fields bool) []registry.Column {
	f := func(name string) string {
		if fields {
			return name
		}
		return ""
	}
	return []registry.Column{
		{Name: "id"},
		{Name: "site"},
		{Name: "at", Field: f(FieldViewTime)},
		{Name: "type"},
		{Name: "page", Field: f(FieldPage)},
		{Name: "query", Field: f(FieldPage)},
		{Name: "referrer", Field: f(FieldReferrer)},
		{Name: "search", Field: f(FieldSearchTerms)},
		{Name: "link", Field: f(FieldOutboundLink)},
		{Name: "asset", Field: f(FieldAssetInteraction)},
		{Name: "name", Field: f(FieldEvent)},
		{Name: "props", Field: f(FieldEvent)},
		{Name: "duration_ms", Field: f(FieldViewTime)},
		{Name: "country", Field: f(FieldCountry)},
		{Name: "region", Field: f(FieldRegion)},
		{Name: "city", Field: f(FieldCity)},
		{Name: "browser", Field: f(FieldBrowser)},
		{Name: "os", Field: f(FieldOS)},
		{Name: "screen", Field: f(FieldScreen)},
	}
}

// Tables declares this package's tables to the personal-data registry.
func Tables() []registry.Table {
	anon := append([]registry.Column{{Name: "visitor"}}, eventColumns(false)...)
	member := append([]registry.Column{{Name: "subject_id"}, {Name: "policy_version"}}, eventColumns(true)...)
	return []registry.Table{
		{
			Name: "activity_salts", Owner: "activity", Origin: registry.System,
			Columns: []registry.Column{{Name: "site"}, {Name: "day"}, {Name: "salt"}, {Name: "created_at"}, {Name: "expires_at"}},
			Description: "Secret daily salts of the visitor hash, one per site-local day; each is deleted once its day has ended, " +
				"so hashes of different days cannot be linked or recomputed from an IP.",
		},
		{
			Name: "activity_events", Owner: "activity", Origin: registry.Observed, Columns: anon,
			Description: "Anonymous page views and events (cookieless analytics). No IP, user agent or account is stored; the visitor " +
				"column is a keyed hash valid for one site-local day, whose key is destroyed when the day ends, after which no row " +
				"relates to an identifiable person. Deleted after the policy's retention for activity.",
		},
		{
			Name: "activity_member_events", Owner: "activity", Origin: registry.Observed,
			Dataset: "activity", SubjectColumn: "subject_id", Source: "tracker", PolicyVersionColumn: "policy_version",
			Columns: member,
			Description: "Page views and events of signed-in members, linked to their account only where the policy's activity " +
				"category says link_to_account and the member's state allows it. Part of the member's export; erased with them.",
		},
		{
			Name: "activity_seen", Owner: "activity", Origin: registry.System,
			Columns: []registry.Column{{Name: "site"}, {Name: "day"}, {Name: "k"}},
			Description: "Hashes of (day, visitor hash, dimension, value) already counted, so unique visitors are exact; " +
				"deleted with the day's salt.",
		},
		{
			Name: "activity_daily", Owner: "activity", Origin: registry.Derived,
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
			Name: "activity_blocks", Owner: "activity", Origin: registry.Derived,
			Columns: []registry.Column{{Name: "site"}, {Name: "dim"}, {Name: "level"}, {Name: "block"}, {Name: "value"}, {Name: "views"},
				{Name: "visitors"}, {Name: "duration_ms"}, {Name: "durations"}},
			Description: "Sums of activity_daily over aligned blocks of 2 to 256 finished days, for fast reports over long ranges.",
		},
		{
			Name: "activity_hourly", Owner: "activity", Origin: registry.Derived,
			Columns:     []registry.Column{{Name: "site"}, {Name: "hour"}, {Name: "views"}, {Name: "visitors"}},
			Description: "Aggregate views and visitors per site-local hour.",
		},
	}
}
