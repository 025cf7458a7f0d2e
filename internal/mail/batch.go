package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/store"
)

func isTx(q store.Q) bool { _, ok := q.(*sql.Tx); return ok }

func priorityOf(campaign bool) int {
	if campaign {
		return campaignPriority
	}
	return 0
}

// outboxRow is one message as insertMessages stores it; status,
// created_at and batch_id are the batch's.
type outboxRow struct {
	id, subjectID, kind, purpose, listID, campaignID, messageID string
	sealed
}

// textColumns and sealedColumns are how many of each an outboxRow fills.
const (
	textColumns   = 7
	sealedColumns = 7
	rowParams     = textColumns + sealedColumns + 3 // and status, created_at, batch_id
)

func (r outboxRow) texts() [textColumns]string {
	return [textColumns]string{r.id, r.subjectID, r.kind, r.purpose, r.listID, r.campaignID, r.messageID}
}

func (r outboxRow) seals() [sealedColumns]door.Sealed {
	return [sealedColumns]door.Sealed{r.to, r.subject, r.text, r.html, r.headers, r.unsubURL, r.unsubMailto}
}

// insertColumns names the columns of a stored message, in the order of
// outboxRow's texts and seals, then the batch's, then the plaintext
// columns of an earlier release, which stay empty.
const insertColumns = `INSERT INTO mail_outbox (id, subject_id, kind, purpose, list_id, campaign_id, message_id,
	to_addr_sealed, subject_sealed, body_text_sealed, body_html_sealed, headers_sealed, unsubscribe_url_sealed, unsubscribe_mailto_sealed,
	status, created_at, batch_id, to_addr, subject, body_text, headers, attempts, last_error) `

// emptyLegacy fills the plaintext columns and the delivery counters.
const emptyLegacy = `'', '', '', '', 0, ''`

// insertUnnest stores a whole batch in one statement on PostgreSQL: one
// array per column, so the statement is parsed and planned once however
// many messages there are.
const insertUnnest = insertColumns + `SELECT t.*, $15::text, $16::timestamptz, $17::text, ` + emptyLegacy + `
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[], $13::bytea[], $14::bytea[]) AS t`

// valuesRows is how many messages one INSERT stores on SQLite: with 17
// parameters a row, 100 rows stay far below its parameter limit, and a
// campaign batch of 500 is five executions of one prepared statement.
const valuesRows = 100

// insertValues renders the INSERT of n rows for SQLite. Its parameters are
// plain "?": SQLite looks "$N" names up by a linear search while parsing,
// which for a statement of 1,700 parameters costs more than the rows.
func insertValues(n int) string {
	row := "(" + strings.Repeat("?, ", rowParams) + emptyLegacy + ")"
	var b strings.Builder
	b.Grow(len(insertColumns) + 8 + n*(len(row)+2))
	b.WriteString(insertColumns)
	b.WriteString("VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// EnqueueBatch is Enqueue for many messages, for bulk mail such as one
// batch of a campaign. Every message is validated and sealed first: an
// invalid one fails the call with an invalid fault naming its field and
// position, one the door refuses with the door's error, and nothing is
// stored. The messages are stored with multi-row inserts, and when SMTP is
// configured their delivery is ONE job for the batch, which sends them one
// after another, each claimed on its own (so none is sent twice), each
// paced by the send rate, checked by BeforeSend and opened through the
// door. The job runs behind transactional mail when every message belongs
// to a campaign. All within q, like Enqueue. It returns the outbox ids in
// the order of ms.
func (o *Outbox) EnqueueBatch(ctx context.Context, q store.Q, ms []Message) ([]string, error) {
	ids, _, err := o.enqueueBatch(ctx, q, ms, false)
	return ids, err
}

// EnqueueUsable is EnqueueBatch for bulk mail in which one unusable
// message (an address the outbox refuses, a recipient the door no longer
// lets the purpose reach) must not stop the others: it returns the outbox
// ids in the order of ms, with "" for each message refused, and queues the
// rest as one batch.
func (o *Outbox) EnqueueUsable(ctx context.Context, q store.Q, ms []Message) ([]string, error) {
	ids, _, err := o.enqueueBatch(ctx, q, ms, true)
	return ids, err
}

// Why a message of a bulk send was not queued (stored in its record).
const (
	reasonUnusable = "address not usable"
	reasonErased   = "erased"
)

// enqueueBatch stores ms as one batch. With usable, a message that cannot
// be queued is left out, with the reason at its position in why; without,
// it fails the call.
func (o *Outbox) enqueueBatch(ctx context.Context, q store.Q, ms []Message, usable bool) (ids, why []string, err error) {
	if len(ms) == 0 {
		return nil, nil, nil
	}
	now := o.clock.Now()
	status := StatusHeld
	if o.Configured() {
		status = StatusQueued
	}
	ids, why = make([]string, len(ms)), make([]string, len(ms))
	refuse := func(i int, reason string, err error) error {
		if usable {
			why[i] = reason
			return nil
		}
		return fmt.Errorf("mail: message %d of %d: %w", i+1, len(ms), err)
	}
	norm := make([]Message, len(ms))
	byPurpose := map[string][]int{}
	var purposes []string
	var memo batchMemo
	for i, m := range ms {
		m, err := o.validate(m, &memo)
		if err != nil {
			if err := refuse(i, reasonUnusable, err); err != nil {
				return nil, nil, err
			}
			continue
		}
		norm[i] = m
		if _, ok := byPurpose[m.Purpose]; !ok {
			purposes = append(purposes, m.Purpose)
		}
		byPurpose[m.Purpose] = append(byPurpose[m.Purpose], i)
	}
	// Each message is sealed through the door for its purpose: one batch
	// of views (states and keys in a few queries) per purpose.
	batch := newRowID(now)
	domain := domainOf(o.from.Address)
	rows := make([]outboxRow, 0, len(ms))
	campaign := true
	for _, purpose := range purposes {
		idx := byPurpose[purpose]
		subjects := make([]string, len(idx))
		for k, i := range idx {
			subjects[k] = norm[i].SubjectID
		}
		people, err := o.door.Subjects(ctx, q, door.System(purpose), subjects)
		if err == nil {
			err = people.Prepare(ctx, o.categories()...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("mail: seal messages: %w", err)
		}
		for _, i := range idx {
			m := norm[i]
			v, err := people.View(m.SubjectID)
			if err != nil {
				if err := refuse(i, withheldUnknown, err); err != nil {
					return nil, nil, err
				}
				continue
			}
			sm, err := o.sealFor(ctx, q, v, m)
			if den, ok := door.IsDenied(err); ok {
				if err := refuse(i, den.Reason.String(), err); err != nil {
					return nil, nil, err
				}
				continue
			}
			if errors.Is(err, door.ErrShredded) {
				if err := refuse(i, reasonErased, err); err != nil {
					return nil, nil, err
				}
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("mail: seal messages: %w", err)
			}
			ids[i] = newRowID(now)
			rows = append(rows, outboxRow{id: ids[i], subjectID: m.SubjectID, kind: m.Kind, purpose: m.Purpose, listID: m.ListID,
				campaignID: m.CampaignID, messageID: "<" + newID() + "@" + domain + ">", sealed: sm})
			campaign = campaign && m.CampaignID != ""
		}
	}
	if len(rows) == 0 {
		return ids, why, nil
	}
	if err := o.insertMessages(ctx, q, rows, status, now, batch); err != nil {
		return nil, nil, fmt.Errorf("mail: store messages: %w", err)
	}
	if !o.Configured() {
		o.log.Info("mail: messages held (no SMTP server)", "batch", batch, "messages", len(rows))
		return ids, why, nil
	}
	if err := o.enqueueBatchJob(ctx, q, batch, campaign); err != nil {
		return nil, nil, err
	}
	if !isTx(q) {
		o.jobs.Wake()
	}
	o.log.Debug("mail: batch queued", "batch", batch, "messages", len(rows))
	return ids, why, nil
}

// insertMessages stores rows: on PostgreSQL in one statement of arrays,
// on SQLite in multi-row inserts of valuesRows rows, the statement
// prepared once when it runs more than once.
func (o *Outbox) insertMessages(ctx context.Context, q store.Q, rows []outboxRow, status string, now time.Time, batch string) error {
	if o.db.Engine == store.Postgres {
		var texts [textColumns][]string
		var seals [sealedColumns][][]byte
		for c := range texts {
			texts[c] = make([]string, len(rows))
		}
		for c := range seals {
			seals[c] = make([][]byte, len(rows))
		}
		for i, r := range rows {
			for c, v := range r.texts() {
				texts[c][i] = v
			}
			for c, v := range r.seals() {
				seals[c][i] = sealedBytes(v)
			}
		}
		args := make([]any, 0, rowParams)
		for _, c := range texts {
			args = append(args, c)
		}
		for _, c := range seals {
			args = append(args, c)
		}
		_, err := q.ExecContext(ctx, insertUnnest, append(args, status, now, batch)...)
		return err
	}
	var stmt *sql.Stmt
	if p, ok := q.(preparer); ok && len(rows) >= 2*valuesRows {
		var err error
		if stmt, err = p.PrepareContext(ctx, insertValues(valuesRows)); err != nil {
			return err
		}
		defer stmt.Close()
	}
	for start := 0; start < len(rows); start += valuesRows {
		part := rows[start:min(start+valuesRows, len(rows))]
		args := make([]any, 0, len(part)*rowParams)
		for _, r := range part {
			for _, v := range r.texts() {
				args = append(args, v)
			}
			for _, v := range r.seals() {
				args = append(args, v)
			}
			args = append(args, status, now, batch)
		}
		var err error
		if stmt != nil && len(part) == valuesRows {
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = q.ExecContext(ctx, insertValues(len(part)), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sealedBytes is the ciphertext a Sealed stores (nil for none), for an
// array parameter.
func sealedBytes(s door.Sealed) []byte {
	v, _ := s.Value()
	b, _ := v.([]byte)
	return b
}

func (o *Outbox) enqueueBatchJob(ctx context.Context, q store.Q, batch string, campaign bool) error {
	if _, err := o.jobs.Enqueue(ctx, q, JobKind, deliverPayload{Batch: batch, Campaign: campaign}, jobs.Options{
		Key: "mail:batch:" + batch, MaxAttempts: deliveryAttempts, Priority: priorityOf(campaign),
	}); err != nil {
		return fmt.Errorf("mail: enqueue delivery: %w", err)
	}
	return nil
}

// resumeRows is how many held messages one delivery job takes over.
const resumeRows = 500

// Resume queues for delivery the mail held while no SMTP server was
// configured, if it was created within ResumeHeldWithin: batches of up to
// 500 messages, each taken over by one UPDATE and delivered by one job
// (transactional mail ahead of campaign mail, as when it was first
// queued). It does nothing without an SMTP server, and returns how many
// messages it queued. NewOutbox calls it; it is safe to call again, and
// two processes calling it at once queue each message once (the UPDATE
// only takes rows still held).
func (o *Outbox) Resume(ctx context.Context) (int, error) {
	if !o.Configured() || o.resumeHeld < 0 {
		return 0, nil
	}
	since := o.clock.Now().Add(-o.resumeHeld)
	total := 0
	for _, campaign := range []bool{false, true} {
		cond := `campaign_id = ''`
		if campaign {
			cond = `campaign_id <> ''`
		}
		for {
			batch := newRowID(o.clock.Now())
			var n int64
			err := o.db.InTx(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET status = 'queued', batch_id = $1
					WHERE id IN (SELECT id FROM mail_outbox WHERE status = 'held' AND created_at >= $2 AND `+cond+`
						ORDER BY created_at LIMIT $3)
					AND status = 'held'`, batch, since, resumeRows)
				if err != nil {
					return err
				}
				if n, err = res.RowsAffected(); err != nil || n == 0 {
					return err
				}
				return o.enqueueBatchJob(ctx, tx, batch, campaign)
			})
			if err != nil {
				return total, fmt.Errorf("mail: resume held mail: %w", err)
			}
			total += int(n)
			if n < resumeRows {
				break
			}
		}
	}
	if total > 0 {
		o.jobs.Wake()
		o.log.Info("mail: held mail queued for delivery now that an SMTP server is configured", "messages", total,
			"held_since", since.Format(time.RFC3339))
	}
	var older int
	if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE status = 'held' AND created_at < $1`, since).Scan(&older); err != nil {
		return total, fmt.Errorf("mail: resume held mail: %w", err)
	}
	if older > 0 {
		o.log.Warn("mail: older held mail stays held (readable in the console)", "messages", older, "older_than", since.Format(time.RFC3339))
	}
	return total, nil
}
