package mail

import (
	"embed"

	"steward/internal/registry"
	"steward/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the mail module: the outbox.
func Migrations() store.Migrations {
	return store.Embedded("mail", migrationFiles)
}

// Tables declares the outbox to the personal-data registry. Each row is
// personal data of subject_id: the address it went to (field email) and
// what it said (field mail, in the communications category). Steward
// composed every row from other data, so the rows are derived, not
// provided, and stay out of a portability export; they are part of access
// and erased with the subject.
func Tables() []registry.Table {
	return []registry.Table{{
		Name:          "mail_outbox",
		Owner:         "mail",
		Dataset:       "mail",
		SubjectColumn: "subject_id",
		Origin:        registry.Derived,
		Source:        "steward",
		Description:   "Mail Steward sent or holds for a subject: address, subject, body, headers, delivery state.",
		Columns: []registry.Column{
			{Name: "id"},
			{Name: "subject_id"},
			{Name: "kind"},
			{Name: "to_addr", Field: "email"},
			{Name: "subject", Field: "mail"},
			{Name: "body_text", Field: "mail"},
			{Name: "body_html", Field: "mail"},
			{Name: "headers", Field: "mail"},
			{Name: "list_id"},
			// Unsubscribe links carry a per-recipient token.
			{Name: "unsubscribe_url", Field: "mail"},
			{Name: "unsubscribe_mailto", Field: "mail"},
			{Name: "campaign_id"},
			{Name: "message_id"},
			{Name: "status"},
			{Name: "attempts"},
			{Name: "last_error"},
			{Name: "claim_owner"},
			{Name: "claim_until"},
			{Name: "created_at"},
			{Name: "sent_at"},
			{Name: "batch_id"},
		},
	}}
}
