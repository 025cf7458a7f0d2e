package mail

import (
	"context"
	"fmt"

	"steward/internal/door"
)

// legacyColumns pairs each plaintext column of an earlier release with the
// sealed column that replaced it, and the field it holds.
var legacyColumns = []door.LegacyColumn{
	{Field: fieldAddress, Plain: "to_addr", Sealed: "to_addr_sealed"},
	{Field: fieldMail, Plain: "subject", Sealed: "subject_sealed"},
	{Field: fieldMail, Plain: "body_text", Sealed: "body_text_sealed"},
	{Field: fieldMail, Plain: "body_html", Sealed: "body_html_sealed"},
	{Field: fieldMail, Plain: "headers", Sealed: "headers_sealed", Nothing: []string{"{}", "null"}},
	{Field: fieldMail, Plain: "unsubscribe_url", Sealed: "unsubscribe_url_sealed"},
	{Field: fieldMail, Plain: "unsubscribe_mailto", Sealed: "unsubscribe_mailto_sealed"},
}

// Reseal moves the messages an earlier release kept in plaintext (address,
// subject line, bodies, headers, unsubscribe methods) into their sealed
// columns, sealed for storage, and empties the plaintext ones
// (door.Reseal). A message whose subject's key was destroyed (the subject
// was erased), or whose subject is unknown, is deleted: nothing could ever
// open it again. A value of a field the policy no longer declares is
// dropped. It runs at start-up, in batches, and is safe to interrupt and
// run again; it returns the messages it changed.
func (o *Outbox) Reseal(ctx context.Context) (int, error) {
	n, err := o.door.Reseal(ctx, o.db, door.ResealTable{Table: "mail_outbox", Key: "id", SubjectColumn: "subject_id",
		Columns: legacyColumns, Empty: "''", DropErased: true})
	if err != nil {
		return n, fmt.Errorf("mail: reseal the outbox: %w", err)
	}
	return n, nil
}
