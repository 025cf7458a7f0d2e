package jobs

import (
	"embed"

	"steward/internal/registry"
	"steward/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the jobs module.
func Migrations() store.Migrations {
	return store.Embedded("jobs", migrationFiles)
}

// Tables declares the jobs table to the personal-data registry. It holds
// no personal data by rule: job payloads must never carry personal values,
// only ids (a subject id, an outbox id), so erasing a subject leaves
// nothing behind here, and last_error masks addresses a failing handler
// might echo.
func Tables() []registry.Table {
	return []registry.Table{{
		Name:        "jobs",
		Owner:       "jobs",
		Origin:      registry.System,
		Description: "Background jobs: kind, JSON payload of ids only, schedule, lease and last error.",
		Columns: []registry.Column{
			{Name: "id"}, {Name: "kind"}, {Name: "payload"}, {Name: "status"}, {Name: "dedupe_key"},
			{Name: "priority"}, {Name: "run_at"}, {Name: "attempts"}, {Name: "max_attempts"},
			{Name: "lease_owner"}, {Name: "lease_until"}, {Name: "last_error"},
			{Name: "created_at"}, {Name: "updated_at"},
		},
	}, {
		Name:        "jobs_periodic",
		Owner:       "jobs",
		Origin:      registry.System,
		Description: "Periodic task kinds and when each is next due: the row both scheduling and completion lock.",
		Columns:     []registry.Column{{Name: "kind"}, {Name: "next_at"}, {Name: "updated_at"}},
	}}
}
