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
// what it said (field mail, in the communications category), each sealed
// with the subject's key for its category. Steward composed every row from
// other data, so the rows are derived, not provided, and stay out of a
// portability export; they are part of access and erased with the subject.
func Tables() []registry.Table {
	return []registry.Table{{
		Name:          "mail_outbox",
		Dated:         registry.Dating{Column: "created_at", Field: fieldMail},
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
			// The policy purpose the mail serves.
			{Name: "purpose"},
			{Name: "to_addr_sealed", Field: fieldAddress, Sensitive: true},
			{Name: "subject_sealed", Field: fieldMail, Sensitive: true},
			{Name: "body_text_sealed", Field: fieldMail, Sensitive: true},
			{Name: "body_html_sealed", Field: fieldMail, Sensitive: true},
			{Name: "headers_sealed", Field: fieldMail, Sensitive: true},
			// Unsubscribe links carry a per-recipient token.
			{Name: "unsubscribe_url_sealed", Field: fieldMail, Sensitive: true},
			{Name: "unsubscribe_mailto_sealed", Field: fieldMail, Sensitive: true},
			{Name: "to_addr", Field: fieldAddress, Legacy: true},
			{Name: "subject", Field: fieldMail, Legacy: true},
			{Name: "body_text", Field: fieldMail, Legacy: true},
			{Name: "body_html", Field: fieldMail, Legacy: true},
			{Name: "headers", Field: fieldMail, Legacy: true},
			{Name: "unsubscribe_url", Field: fieldMail, Legacy: true},
			{Name: "unsubscribe_mailto", Field: fieldMail, Legacy: true},
			{Name: "list_id"},
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
