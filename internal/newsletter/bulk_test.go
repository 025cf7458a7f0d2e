package newsletter_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// The bulk methods a campaign uses when the subject store and the outbox
// offer them. Neither does yet; these test-only stand-ins read and write
// the same tables the way the real ones would (one query per batch), so
// the benchmark can show what the batch path costs. They belong in
// packages subject and mail (see the report to the lead).

type sqlBulk struct{}

func inList(first int, ids []string) (string, []any) {
	marks := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		marks[i] = fmt.Sprintf("$%d", first+i)
		args[i] = id
	}
	return strings.Join(marks, ", "), args
}

func (sqlBulk) States(ctx context.Context, q store.Q, ids []string) (map[string]*policy.State, error) {
	in, args := inList(1, ids)
	rows, err := q.QueryContext(ctx, `SELECT s.id, s.merged_into, st.restricted, st.restricted_categories, st.marketing_suppressed, st.legal_hold,
		p.purpose, p.consent, p.objection
		FROM subjects s LEFT JOIN subject_state st ON st.subject_id = s.id LEFT JOIN subject_purpose_state p ON p.subject_id = s.id
		WHERE s.id IN (`+in+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*policy.State{}
	for rows.Next() {
		var id string
		var merged, cats, purpose sql.NullString
		var restricted, suppressed, hold, consent, objection sql.NullBool
		if err := rows.Scan(&id, &merged, &restricted, &cats, &suppressed, &hold, &purpose, &consent, &objection); err != nil {
			return nil, err
		}
		if merged.Valid {
			continue
		}
		st := out[id]
		if st == nil {
			st = &policy.State{SubjectID: id, Consents: map[string]bool{}, Objections: map[string]bool{},
				Restricted: restricted.Bool, MarketingSuppressed: suppressed.Bool, LegalHold: hold.Bool}
			if cats.String != "" {
				st.RestrictedCategories = strings.Split(cats.String, ",")
			}
			out[id] = st
		}
		if purpose.Valid {
			st.Consents[purpose.String] = consent.Bool
			st.Objections[purpose.String] = objection.Bool
		}
	}
	return out, rows.Err()
}

func (sqlBulk) Subjects(ctx context.Context, q store.Q, ids []string) (map[string]subject.Subject, error) {
	in, args := inList(1, ids)
	rows, err := q.QueryContext(ctx, `SELECT id, kind, email, source, policy_version, created_at, merged_into, erased_at FROM subjects WHERE id IN (`+in+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]subject.Subject{}
	for rows.Next() {
		var s subject.Subject
		var kind string
		var email, merged sql.NullString
		var erased sql.NullTime
		if err := rows.Scan(&s.ID, &kind, &email, &s.Source, &s.PolicyVersion, &s.CreatedAt, &merged, &erased); err != nil {
			return nil, err
		}
		s.Kind, s.Email, s.MergedInto = subject.Kind(kind), email.String, merged.String
		if erased.Valid {
			s.ErasedAt = erased.Time
		}
		out[s.ID] = s
	}
	return out, rows.Err()
}

// sqlBulkOutbox stores messages and their delivery jobs as Outbox.Enqueue
// does with SMTP configured, in multi-row inserts. (The real method would
// also validate each message as Enqueue does.) perBatchJob stores one
// delivery job per call instead of one per message, as the per-campaign
// batching issue 5 asks of mail would.
type sqlBulkOutbox struct{ perBatchJob bool }

func hexID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (o sqlBulkOutbox) EnqueueBatch(ctx context.Context, q store.Q, ms []mail.Message) ([]string, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ids := make([]string, len(ms))
	const chunk = 10
	for start := 0; start < len(ms); start += chunk {
		part := ms[start:min(start+chunk, len(ms))]
		var ob, jb strings.Builder
		var oargs, jargs []any
		for i, m := range part {
			id := hexID()
			ids[start+i] = id
			if i > 0 {
				ob.WriteString(", ")
			}
			k := len(oargs)
			fmt.Fprintf(&ob, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, '{}', $%d, $%d, '', $%d, $%d, 'queued', 0, '', $%d)",
				k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9, k+10, k+11, k+12)
			oargs = append(oargs, id, m.SubjectID, m.Kind, m.To, m.Subject, m.Text, m.HTML, "<"+m.ListID+">", m.Unsubscribe.URL, m.CampaignID, "<"+hexID()+"@example.org>", now)
			if o.perBatchJob && start+i > 0 {
				continue
			}
			payload, _ := json.Marshal(map[string]string{"id": id})
			if jb.Len() > 0 {
				jb.WriteString(", ")
			}
			k = len(jargs)
			fmt.Fprintf(&jb, "($%d, 'mail.deliver', $%d, 'pending', $%d, -10, $%d, 0, 12, '', $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6)
			jargs = append(jargs, hexID(), payload, "mail:"+id, now, now, now)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO mail_outbox (id, subject_id, kind, to_addr, subject, body_text, body_html, headers, list_id,
			unsubscribe_url, unsubscribe_mailto, campaign_id, message_id, status, attempts, last_error, created_at) VALUES `+ob.String(), oargs...); err != nil {
			return nil, err
		}
		if jb.Len() == 0 {
			continue
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO jobs (id, kind, payload, status, dedupe_key, priority, run_at, attempts, max_attempts, last_error, created_at, updated_at)
			VALUES `+jb.String(), jargs...); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
