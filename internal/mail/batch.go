package mail

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"steward/internal/fault"
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

// outboxRow is one message as EnqueueBatch stores it, in the order of
// insertColumns; status, created_at and batch_id are the batch's.
type outboxRow [13]string

const insertColumns = `INSERT INTO mail_outbox (id, subject_id, kind, to_addr, subject, body_text, body_html, headers, list_id,
	unsubscribe_url, unsubscribe_mailto, campaign_id, message_id, status, attempts, last_error, created_at, batch_id) `

// insertUnnest stores a whole batch in one statement on PostgreSQL: one
// array per column, so the statement is parsed and planned once however
// many messages there are.
const insertUnnest = insertColumns + `SELECT t.*, $14::text, 0, '', $15::timestamptz, $16::text
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
		$10::text[], $11::text[], $12::text[], $13::text[]) AS t`

// valuesRows is how many messages one INSERT stores on SQLite: with 16
// parameters a row, 100 rows stay far below its parameter limit, and a
// campaign batch of 500 is five executions of one prepared statement.
const valuesRows = 100

// insertValues renders the INSERT of n rows for SQLite. Its parameters are
// plain "?": SQLite looks "$N" names up by a linear search while parsing,
// which for a statement of 1,600 parameters costs more than the rows.
func insertValues(n int) string {
	row := "(" + strings.Repeat("?, ", 14) + "0, '', ?, ?)"
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
// batch of a campaign. Every message is validated first: an invalid one
// fails the call with an invalid fault naming its field and position, and
// nothing is stored. The messages are stored with multi-row inserts, and
// when SMTP is configured their delivery is ONE job for the batch, which
// sends them one after another, each claimed on its own (so none is sent
// twice), each paced by the send rate and checked by BeforeSend. The job
// runs behind transactional mail when every message belongs to a campaign.
// All within q, like Enqueue. It returns the outbox ids in the order of ms.
func (o *Outbox) EnqueueBatch(ctx context.Context, q store.Q, ms []Message) ([]string, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	now := o.clock.Now()
	status := StatusHeld
	if o.Configured() {
		status = StatusQueued
	}
	batch := newRowID(now)
	domain := domainOf(o.from.Address)
	ids := make([]string, len(ms))
	rows := make([]outboxRow, len(ms))
	campaign := true
	var memo batchMemo
	for i, m := range ms {
		m, err := normalizeWith(m, &memo)
		if err != nil {
			return nil, fmt.Errorf("mail: message %d of %d: %w", i+1, len(ms), err)
		}
		headers := "null"
		if len(m.Headers) > 0 {
			b, err := json.Marshal(m.Headers)
			if err != nil {
				return nil, fmt.Errorf("mail: encode headers: %w", err)
			}
			headers = string(b)
		}
		var unsubURL, unsubMailto string
		if m.Unsubscribe != nil {
			unsubURL, unsubMailto = m.Unsubscribe.URL, m.Unsubscribe.Mailto
		}
		ids[i] = newRowID(now)
		campaign = campaign && m.CampaignID != ""
		rows[i] = outboxRow{ids[i], m.SubjectID, m.Kind, m.To, m.Subject, m.Text, m.HTML, headers, m.ListID,
			unsubURL, unsubMailto, m.CampaignID, "<" + newID() + "@" + domain + ">"}
	}
	if err := o.insertMessages(ctx, q, rows, status, now, batch); err != nil {
		return nil, fmt.Errorf("mail: store messages: %w", err)
	}
	if !o.Configured() {
		o.log.Info("mail: messages held (no SMTP server)", "batch", batch, "messages", len(ms))
		return ids, nil
	}
	if err := o.enqueueBatchJob(ctx, q, batch, campaign); err != nil {
		return nil, err
	}
	if !isTx(q) {
		o.jobs.Wake()
	}
	o.log.Debug("mail: batch queued", "batch", batch, "messages", len(ms))
	return ids, nil
}

// EnqueueUsable is EnqueueBatch for bulk mail in which one unusable
// message (an address the outbox refuses, say) must not stop the others:
// it returns the outbox ids in the order of ms, with "" for each message
// refused as invalid, and queues the rest as one batch.
func (o *Outbox) EnqueueUsable(ctx context.Context, q store.Q, ms []Message) ([]string, error) {
	ids, err := o.EnqueueBatch(ctx, q, ms)
	if !fault.Is(err, fault.Invalid) {
		return ids, err
	}
	// EnqueueBatch validates before it stores: nothing was written.
	var usable []Message
	var at []int
	for i, m := range ms {
		if _, err := normalize(m); err == nil {
			usable = append(usable, m)
			at = append(at, i)
		}
	}
	got, err := o.EnqueueBatch(ctx, q, usable)
	if err != nil {
		return nil, err
	}
	ids = make([]string, len(ms))
	for k, i := range at {
		ids[i] = got[k]
	}
	return ids, nil
}

// insertMessages stores rows: on PostgreSQL in one statement of arrays,
// on SQLite in multi-row inserts of valuesRows rows, the statement
// prepared once when it runs more than once.
func (o *Outbox) insertMessages(ctx context.Context, q store.Q, rows []outboxRow, status string, now time.Time, batch string) error {
	if o.db.Engine == store.Postgres {
		var cols [len(outboxRow{})][]string
		for c := range cols {
			cols[c] = make([]string, len(rows))
			for i := range rows {
				cols[c][i] = rows[i][c]
			}
		}
		args := make([]any, 0, len(cols)+3)
		for _, c := range cols {
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
		args := make([]any, 0, len(part)*(len(outboxRow{})+3))
		for _, r := range part {
			for _, v := range r {
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
