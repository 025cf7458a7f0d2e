package newsletter

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"time"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// Campaign is one mailing to a list.
type Campaign struct {
	ID          string     `json:"id"`
	ListID      string     `json:"list_id"`
	Subject     string     `json:"subject"`
	Text        string     `json:"text"`
	HTML        string     `json:"html,omitempty"`
	CreatedBy   string     `json:"created_by"`
	Status      string     `json:"status"`
	Queued      int        `json:"queued"`
	Skipped     int        `json:"skipped"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// CampaignInput is what staff compose.
type CampaignInput struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

const (
	maxSubject = 200
	maxBody    = 512 << 10
)

// CreateCampaign records a campaign and queues its sending. The sending
// runs in batches as background jobs; each recipient is checked against
// the guard when their batch runs, not now.
func (s *Service) CreateCampaign(ctx context.Context, staffID, listID string, in CampaignInput) (Campaign, error) {
	in.Subject = strings.TrimSpace(in.Subject)
	if in.Subject == "" {
		return Campaign{}, fault.FieldError("subject", "a campaign needs a subject")
	}
	if err := checkText("subject", in.Subject, maxSubject, false); err != nil {
		return Campaign{}, err
	}
	if strings.TrimSpace(in.Text) == "" {
		return Campaign{}, fault.FieldError("text", "a campaign needs a plain-text body")
	}
	if err := checkText("text", in.Text, maxBody, true); err != nil {
		return Campaign{}, err
	}
	if err := checkText("html", in.HTML, maxBody, true); err != nil {
		return Campaign{}, err
	}
	c := Campaign{ID: randomToken("nc_"), ListID: listID, Subject: in.Subject, Text: in.Text, HTML: in.HTML,
		CreatedBy: staffID, Status: "queued", CreatedAt: s.d.Clock.Now()}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		list, err := s.GetList(ctx, tx, listID)
		if err != nil {
			return err
		}
		if !list.Open {
			return fault.New(fault.Conflict, "the list %q is closed", list.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO newsletter_campaigns (id, list_id, subject_line, body_text, body_html, created_by, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)`, c.ID, c.ListID, c.Subject, c.Text, c.HTML, c.CreatedBy, c.CreatedAt); err != nil {
			return fmt.Errorf("newsletter: create campaign: %w", err)
		}
		if err := s.enqueueBatch(ctx, tx, c.ID, "", time.Time{}); err != nil {
			return err
		}
		return s.audit(ctx, tx, "staff:"+staffID, "newsletter.campaign", "", map[string]string{"list": listID, "campaign": c.ID})
	})
	if err != nil {
		return Campaign{}, err
	}
	s.d.Jobs.Wake()
	return c, nil
}

type batchPayload struct {
	Campaign string `json:"campaign"`
	After    string `json:"after"`
}

// batchPriority orders campaign batch jobs behind transactional jobs (a
// password reset must not wait for 100,000 newsletters) but ahead of the
// campaign's own deliveries (mail gives those -10): otherwise each batch
// would wait for the mail of the batch before to be sent, and queueing a
// campaign would take as long as delivering it.
const batchPriority = -5

func (s *Service) enqueueBatch(ctx context.Context, q store.Q, campaignID, after string, runAt time.Time) error {
	_, err := s.d.Jobs.Enqueue(ctx, q, JobCampaignBatch, batchPayload{Campaign: campaignID, After: after},
		jobs.Options{Key: "campaign:" + campaignID + ":" + after, Priority: batchPriority, RunAt: runAt})
	if err != nil {
		return fmt.Errorf("newsletter: queue campaign batch: %w", err)
	}
	return nil
}

const campaignColumns = `id, list_id, subject_line, body_text, body_html, created_by, status, queued, skipped, created_at, completed_at`

func scanCampaign(row interface{ Scan(...any) error }) (Campaign, string, error) {
	var c Campaign
	var done sql.NullTime
	var cursor string
	err := row.Scan(&c.ID, &c.ListID, &c.Subject, &c.Text, &c.HTML, &c.CreatedBy, &c.Status, &c.Queued, &c.Skipped, &c.CreatedAt, &done, &cursor)
	c.CreatedAt = c.CreatedAt.UTC()
	c.CompletedAt = timePtr(done)
	return c, cursor, err
}

// Campaign returns a campaign with its progress.
func (s *Service) Campaign(ctx context.Context, q store.Q, id string) (Campaign, error) {
	c, _, err := scanCampaign(q.QueryRowContext(ctx, `SELECT `+campaignColumns+`, cursor_subject FROM newsletter_campaigns WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, fault.New(fault.NotFound, "no such campaign")
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("newsletter: campaign: %w", err)
	}
	return c, nil
}

// Campaigns lists the campaigns of a list, newest first.
func (s *Service) Campaigns(ctx context.Context, q store.Q, listID string) ([]Campaign, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+campaignColumns+`, cursor_subject FROM newsletter_campaigns WHERE list_id = $1 ORDER BY created_at DESC, id`, listID)
	if err != nil {
		return nil, fmt.Errorf("newsletter: campaigns: %w", err)
	}
	defer rows.Close()
	out := []Campaign{}
	for rows.Next() {
		c, _, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("newsletter: campaigns: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

type recipient struct {
	subjectID string
	tracking  bool
}

// runCampaignBatch sends one batch: the next BatchSize confirmed
// subscribers after the cursor, each checked against the guard now. The
// batch, its per-recipient records, the outbox messages, the cursor and
// the next batch's job commit together with the job's completion, so a
// crash re-runs exactly the batch that did not commit.
func (s *Service) runCampaignBatch(ctx context.Context, j jobs.Job) error {
	var p batchPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		c, cursor, err := scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignColumns+`, cursor_subject FROM newsletter_campaigns WHERE id = $1`, p.Campaign))
		if errors.Is(err, sql.ErrNoRows) {
			return jobs.Permanent(fmt.Errorf("newsletter: campaign %s is gone", p.Campaign))
		}
		if err != nil {
			return fmt.Errorf("newsletter: campaign batch: %w", err)
		}
		if c.Status == "sent" || cursor != p.After {
			return s.d.Jobs.Complete(ctx, tx, j) // a stale duplicate of a batch already done
		}
		list, err := s.GetList(ctx, tx, c.ListID)
		if err != nil {
			return err
		}
		recips, err := s.batch(ctx, tx, list.ID, p.After)
		if err != nil {
			return err
		}
		ids := make([]string, len(recips))
		for i, r := range recips {
			ids[i] = r.subjectID
		}
		guardFor := func(string) *policy.Guard { return s.guard }
		if s.d.Guards != nil && len(ids) > 0 {
			if guardFor, err = s.d.Guards.GuardsFor(ctx, tx, ids); err != nil {
				return err
			}
		}
		now := s.d.Clock.Now()
		sends, queued, skipped, err := s.sendBatch(ctx, tx, c, list, recips, guardFor)
		if err != nil {
			return err
		}
		if err := recordSends(ctx, tx, c.ID, sends, now); err != nil {
			return err
		}
		next := p.After
		if len(recips) > 0 {
			next = recips[len(recips)-1].subjectID
		}
		done := len(recips) < s.d.BatchSize
		status := "sending"
		var completed any
		if done {
			status, completed = "sent", now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE newsletter_campaigns SET status = $2, cursor_subject = $3, queued = queued + $4,
			skipped = skipped + $5, completed_at = $6 WHERE id = $1`, c.ID, status, next, queued, skipped, completed); err != nil {
			return fmt.Errorf("newsletter: campaign progress: %w", err)
		}
		if !done {
			var at time.Time
			if s.d.BatchInterval > 0 {
				at = now.Add(s.d.BatchInterval)
			}
			if err := s.enqueueBatch(ctx, tx, c.ID, next, at); err != nil {
				return err
			}
		}
		return s.d.Jobs.Complete(ctx, tx, j)
	})
	if err != nil {
		return err
	}
	s.d.Jobs.Wake()
	return nil
}

type sendRow struct{ subjectID, status, reason, outboxID string }

// recordSends writes a batch's per-recipient records in multi-row
// inserts of 50 rows (300 parameters: SQLite resolves $N names by a linear
// search, so much larger statements cost more to parse than they save).
func recordSends(ctx context.Context, q store.Q, campaignID string, rows []sendRow, now time.Time) error {
	const chunk = 20
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		var b strings.Builder
		args := make([]any, 0, len(part)*6)
		b.WriteString(`INSERT INTO newsletter_sends (campaign_id, subject_id, status, reason, outbox_id, created_at) VALUES `)
		for i, r := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6)
			args = append(args, campaignID, r.subjectID, r.status, r.reason, r.outboxID, now)
		}
		b.WriteString(` ON CONFLICT (campaign_id, subject_id) DO NOTHING`)
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("newsletter: record sends: %w", err)
		}
	}
	return nil
}

func (s *Service) batch(ctx context.Context, q store.Q, listID, after string) ([]recipient, error) {
	rows, err := q.QueryContext(ctx, `SELECT subject_id, tracking FROM newsletter_subscriptions
		WHERE list_id = $1 AND status = 'confirmed' AND subject_id > $2 ORDER BY subject_id LIMIT $3`, listID, after, s.d.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("newsletter: campaign batch: %w", err)
	}
	defer rows.Close()
	var out []recipient
	for rows.Next() {
		var r recipient
		if err := rows.Scan(&r.subjectID, &r.tracking); err != nil {
			return nil, fmt.Errorf("newsletter: campaign batch: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// sendBatch checks each recipient of a batch against the guard, as the
// state stands now, and queues the mail of those it allows. Reads and
// writes go in bulk where the subject store and the outbox offer it (one
// query for the batch's states, one for their addresses, one multi-row
// insert for the mail), else one recipient at a time.
func (s *Service) sendBatch(ctx context.Context, q store.Q, c Campaign, list List, recips []recipient, guardFor func(string) *policy.Guard) ([]sendRow, int, int, error) {
	ids := make([]string, len(recips))
	for i, r := range recips {
		ids[i] = r.subjectID
	}
	states, subjects, err := s.loadRecipients(ctx, q, ids)
	if err != nil {
		return nil, 0, 0, err
	}
	rows := make([]sendRow, len(recips))
	var msgs []mail.Message
	var msgRow []int
	for i, r := range recips {
		rows[i] = sendRow{subjectID: r.subjectID, status: "skipped"}
		st, ok := states[r.subjectID]
		if !ok {
			rows[i].reason = "unknown subject"
			continue
		}
		if d := guardFor(r.subjectID).Decide(list.Purpose, s.contact, st); !d.Allowed {
			rows[i].reason = d.Reason.String()
			continue
		}
		sub, ok := subjects[r.subjectID]
		if !ok || sub.Email == "" || sub.Erased() || sub.MergedInto != "" {
			rows[i].reason = "no address"
			continue
		}
		m, err := s.message(c, list, r, sub)
		if err != nil {
			return nil, 0, 0, err
		}
		msgs = append(msgs, m)
		msgRow = append(msgRow, i)
	}
	var outboxIDs []string
	if s.bulkOut != nil && len(msgs) > 0 {
		if outboxIDs, err = s.bulkOut.EnqueueBatch(ctx, q, msgs); err != nil {
			return nil, 0, 0, fmt.Errorf("newsletter: queue campaign mail: %w", err)
		}
	} else {
		for _, m := range msgs {
			id, err := s.d.Outbox.Enqueue(ctx, q, m)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("newsletter: queue campaign mail: %w", err)
			}
			outboxIDs = append(outboxIDs, id)
		}
	}
	for k, i := range msgRow {
		rows[i].status, rows[i].outboxID = "queued", outboxIDs[k]
	}
	return rows, len(msgs), len(recips) - len(msgs), nil
}

// loadRecipients returns the guard state and the subject row of each id
// that exists.
func (s *Service) loadRecipients(ctx context.Context, q store.Q, ids []string) (map[string]*policy.State, map[string]subject.Subject, error) {
	if s.bulkIn != nil {
		states, err := s.bulkIn.States(ctx, q, ids)
		if err != nil {
			return nil, nil, fmt.Errorf("newsletter: recipients' state: %w", err)
		}
		subjects, err := s.bulkIn.Subjects(ctx, q, ids)
		if err != nil {
			return nil, nil, fmt.Errorf("newsletter: recipients: %w", err)
		}
		return states, subjects, nil
	}
	states := make(map[string]*policy.State, len(ids))
	subjects := make(map[string]subject.Subject, len(ids))
	for _, id := range ids {
		st, err := s.d.Subjects.State(ctx, q, id)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sub, err := s.d.Subjects.Get(ctx, q, id)
		if err != nil {
			return nil, nil, err
		}
		states[id], subjects[id] = st, sub
	}
	return states, subjects, nil
}

// message builds one recipient's mail: the campaign with their own
// unsubscribe and preferences links, and tracking only where both the
// list and the recipient allow it.
func (s *Service) message(c Campaign, list List, r recipient, sub subject.Subject) (mail.Message, error) {
	unsub, err := s.UnsubscribeLink(sub.ID, list.ID)
	if err != nil {
		return mail.Message{}, err
	}
	prefs, err := s.PreferencesLink(sub.ID)
	if err != nil {
		return mail.Message{}, err
	}
	text := c.Text + "\n\n-- \nYou receive this because you subscribed to " + list.Name + ".\n" +
		"Unsubscribe (one click, no login): " + unsub + "\n" +
		"Your newsletter preferences: " + prefs + "\n"
	var body string
	if c.HTML != "" {
		body = c.HTML
		trackOpens := list.TrackOpens && r.tracking
		trackClicks := list.TrackClicks && r.tracking
		if trackClicks {
			body = s.rewriteLinks(body, c.ID, sub.ID)
		}
		body += `<hr><p style="font-size:small">You receive this because you subscribed to ` + html.EscapeString(list.Name) +
			`. <a href="` + html.EscapeString(unsub) + `">Unsubscribe</a> · <a href="` + html.EscapeString(prefs) + `">Preferences</a></p>`
		if trackOpens {
			if tok, err := s.d.Links.Sign(consent.Claims{Scope: consent.ScopeTrack, List: c.ID, Subject: sub.ID, Ref: "open"}); err == nil {
				body += `<img src="` + html.EscapeString(s.d.BaseURL+"/newsletters/t/open?token="+url.QueryEscape(tok)) + `" width="1" height="1" alt="">`
			}
		}
	}
	return mail.Message{
		SubjectID: sub.ID, To: sub.Email, Subject: c.Subject, Text: text, HTML: body, Kind: "campaign",
		ListID: list.ID + "." + s.host, Unsubscribe: &mail.Unsubscribe{URL: unsub}, CampaignID: c.ID,
	}, nil
}

var hrefRE = regexp.MustCompile(`href="(https?://[^"]+)"`)

// rewriteLinks points each absolute link at the click-tracking endpoint,
// with a token bound to the campaign, the recipient and the target, so the
// endpoint is no open redirect.
func (s *Service) rewriteLinks(body, campaignID, subjectID string) string {
	return hrefRE.ReplaceAllStringFunc(body, func(m string) string {
		target := html.UnescapeString(hrefRE.FindStringSubmatch(m)[1])
		tok, err := s.d.Links.Sign(consent.Claims{Scope: consent.ScopeTrack, List: campaignID, Subject: subjectID, Ref: "click:" + targetHash(target)})
		if err != nil {
			return m
		}
		u := s.d.BaseURL + "/newsletters/t/click?token=" + url.QueryEscape(tok) + "&url=" + url.QueryEscape(target)
		return `href="` + html.EscapeString(u) + `"`
	})
}

func targetHash(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:12])
}

// Track records an open or a click from a tracking token, only while the
// list allows tracking and the recipient's opt-in stands. For a click it
// returns the target to redirect to; a token that does not match the
// target is refused, so the endpoint redirects nowhere else.
func (s *Service) Track(ctx context.Context, token, target string) (string, error) {
	c, err := s.d.Links.Verify(token, consent.ScopeTrack)
	if err != nil {
		return "", err
	}
	kind := "open"
	if h, ok := strings.CutPrefix(c.Ref, "click:"); ok {
		if target == "" || targetHash(target) != h {
			return "", consent.ErrBadLink
		}
		kind = "click"
	} else if c.Ref != "open" {
		return "", consent.ErrBadLink
	}
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		camp, err := s.Campaign(ctx, tx, c.List)
		if err != nil {
			return nil
		}
		list, err := s.GetList(ctx, tx, camp.ListID)
		if err != nil {
			return nil
		}
		allowed := (kind == "open" && list.TrackOpens) || (kind == "click" && list.TrackClicks)
		sub, found, err := s.subscription(ctx, tx, list.ID, c.Subject)
		if err != nil {
			return err
		}
		if !allowed || !found || !sub.Tracking || sub.Status != Confirmed {
			return nil // recorded nowhere: the person did not (or no longer) agree
		}
		url := ""
		if kind == "click" {
			url = target
			if len(url) > 2000 {
				url = url[:2000]
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO newsletter_events (id, campaign_id, subject_id, kind, url, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			randomToken("ne_"), camp.ID, c.Subject, kind, url, s.d.Clock.Now())
		if err != nil {
			return fmt.Errorf("newsletter: track: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return target, nil
}

// IsSubscriber reports, for each id, whether the subject holds a confirmed
// subscription to any list (package notice mails policy changes to
// members and subscribers).
func (s *Service) IsSubscriber(ctx context.Context, q store.Q, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	ph := make([]string, len(ids))
	for i, id := range ids {
		args[i] = id
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT subject_id FROM newsletter_subscriptions WHERE status = 'confirmed' AND subject_id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("newsletter: subscribers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("newsletter: subscribers: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
