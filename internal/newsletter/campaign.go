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
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
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
	if err := mail.CheckText("subject", in.Subject, maxSubject, false); err != nil {
		return Campaign{}, err
	}
	if strings.TrimSpace(in.Text) == "" {
		return Campaign{}, fault.FieldError("text", "a campaign needs a plain-text body")
	}
	if err := mail.CheckText("text", in.Text, maxBody, true); err != nil {
		return Campaign{}, err
	}
	if err := mail.CheckText("html", in.HTML, maxBody, true); err != nil {
		return Campaign{}, err
	}
	c := Campaign{ID: randomToken("nc_"), ListID: listID, Subject: in.Subject, Text: in.Text, HTML: in.HTML,
		CreatedBy: staffID, Status: "queued", CreatedAt: s.d.Clock.Now()}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		list, err := s.getList(ctx, tx, listID)
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

// campaign returns a campaign with its progress.
func (s *Service) campaign(ctx context.Context, q store.Q, id string) (Campaign, error) {
	c, _, err := scanCampaign(q.QueryRowContext(ctx, `SELECT `+campaignColumns+`, cursor_subject FROM newsletter_campaigns WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, fault.New(fault.NotFound, "no such campaign")
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("newsletter: campaign: %w", err)
	}
	return c, nil
}

// campaigns lists the campaigns of a list, newest first.
func (s *Service) campaigns(ctx context.Context, q store.Q, listID string) ([]Campaign, error) {
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
		list, err := s.getList(ctx, tx, c.ListID)
		if err != nil {
			return err
		}
		pr, err := s.d.Outbox.SendBatch(ctx, tx, campaignBatch{s: s, c: c, list: list}, p.After, s.d.BatchSize)
		if err != nil {
			return fmt.Errorf("newsletter: campaign batch: %w", err)
		}
		status := "sending"
		var completed any
		if pr.Done {
			status, completed = "sent", pr.At
		}
		if _, err := tx.ExecContext(ctx, `UPDATE newsletter_campaigns SET status = $2, cursor_subject = $3, queued = queued + $4,
			skipped = skipped + $5, completed_at = $6 WHERE id = $1`, c.ID, status, pr.After, pr.Queued, pr.Skipped, completed); err != nil {
			return fmt.Errorf("newsletter: campaign progress: %w", err)
		}
		if !pr.Done {
			var at time.Time
			if s.d.BatchInterval > 0 {
				at = pr.At.Add(s.d.BatchInterval)
			}
			if err := s.enqueueBatch(ctx, tx, c.ID, pr.After, at); err != nil {
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

// sendsTable holds a campaign's per-recipient records.
var sendsTable = mail.DeliveryTable{Name: "newsletter_sends", Key: "campaign_id"}

// campaignBatch is one batch of a campaign as the outbox's SendBatch runs
// it: the list's confirmed subscribers, each checked against the guard as
// the state stands now, with one query for the batch's states and
// addresses.
type campaignBatch struct {
	s    *Service
	c    Campaign
	list List
}

func (b campaignBatch) Next(ctx context.Context, tx *sql.Tx, after string, limit int) (mail.Page, error) {
	s := b.s
	recips, err := s.batch(ctx, tx, b.list.ID, after, limit)
	if err != nil {
		return mail.Page{}, err
	}
	page := mail.Page{Recipients: make([]mail.Recipient, len(recips)), Full: len(recips) == limit}
	if len(recips) == 0 {
		return page, nil
	}
	page.Last = recips[len(recips)-1].subjectID
	ids := make([]string, len(recips))
	for i, r := range recips {
		ids[i] = r.subjectID
	}
	states, subjects, err := s.d.Subjects.StatesAndSubjects(ctx, tx, ids)
	if err != nil {
		return mail.Page{}, fmt.Errorf("newsletter: recipients: %w", err)
	}
	// Each address is read through the door for the list's purpose: a
	// recipient the policy no longer lets it reach (an objection, a
	// withdrawn consent, a restriction) is skipped with the reason.
	people, err := s.d.Door.SubjectsOf(ctx, tx, door.System(b.list.Purpose), states)
	if err != nil {
		return mail.Page{}, err
	}
	for i, r := range recips {
		out := &page.Recipients[i]
		out.SubjectID = r.subjectID
		v, err := people.View(r.subjectID)
		if err != nil {
			out.Skip = "unknown subject"
			continue
		}
		if err := v.Check(s.contact); err != nil {
			d, _ := door.IsDenied(err)
			out.Skip = d.Reason.String()
			continue
		}
		sub, ok := subjects[r.subjectID]
		if !ok || !sub.HasEmail || sub.Erased() || sub.MergedInto != "" {
			out.Skip = "no address"
			continue
		}
		addr, err := sub.Email(ctx, v)
		if err != nil {
			return mail.Page{}, err
		}
		if out.Message, err = s.message(b.c, b.list, r, sub, addr); err != nil {
			return mail.Page{}, err
		}
	}
	return page, nil
}

func (b campaignBatch) Record(ctx context.Context, tx *sql.Tx, ds []mail.Delivery, now time.Time) error {
	return sendsTable.Record(ctx, tx, b.s.d.DB.Engine, b.c.ID, ds, now)
}

func (s *Service) batch(ctx context.Context, q store.Q, listID, after string, limit int) ([]recipient, error) {
	rows, err := q.QueryContext(ctx, `SELECT subject_id, tracking FROM newsletter_subscriptions
		WHERE list_id = $1 AND status = 'confirmed' AND subject_id > $2 ORDER BY subject_id LIMIT $3`, listID, after, limit)
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

// campaignKind is the outbox kind of campaign mail; the outbox runs
// checkBeforeSend on every message of it.
const campaignKind = "campaign"

// checkBeforeSend is the last check of a campaign mail, which the outbox
// runs just before sending it, inside the transaction that marks it
// suppressed: the recipient must still hold a confirmed subscription to
// the list and the guard must still allow the list's purpose. So an
// objection to marketing, a withdrawal, GPC, a marketing suppression or an
// unsubscription recorded after the batch was queued stops the mail still
// waiting in the outbox (promise J24). A mail stopped here is recorded in
// the campaign's per-recipient record as skipped, with the reason.
func (s *Service) checkBeforeSend(ctx context.Context, q store.Q, m mail.Stored) (bool, string, error) {
	if m.CampaignID == "" {
		return false, "", nil
	}
	var listID, purpose string
	err := q.QueryRowContext(ctx, `SELECT l.id, l.purpose FROM newsletter_campaigns c JOIN newsletter_lists l ON l.id = c.list_id
		WHERE c.id = $1`, m.CampaignID).Scan(&listID, &purpose)
	if errors.Is(err, sql.ErrNoRows) {
		return true, "unknown campaign", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("newsletter: check before sending: %w", err)
	}
	st, err := s.d.Subjects.State(ctx, q, m.SubjectID)
	if fault.Is(err, fault.NotFound) {
		return s.stopped(ctx, q, m, m.SubjectID, "unknown subject")
	}
	if err != nil {
		return false, "", fmt.Errorf("newsletter: check before sending: %w", err)
	}
	// A merge may have moved the subscription to the surviving subject.
	live := st.SubjectID
	sub, found, err := s.subscription(ctx, q, listID, live)
	if err != nil {
		return false, "", err
	}
	if !found || sub.Status != Confirmed {
		return s.stopped(ctx, q, m, live, "unsubscribed")
	}
	guard, err := s.d.Guards.For(ctx, st)
	if err != nil {
		return false, "", err
	}
	if d := guard.Decide(purpose, s.contact, st); !d.Allowed {
		return s.stopped(ctx, q, m, live, d.Reason.String())
	}
	return false, "", nil
}

// stopped records that a queued campaign mail was stopped before sending:
// the recipient's record becomes skipped with the reason, and the
// campaign's counts move with it.
func (s *Service) stopped(ctx context.Context, q store.Q, m mail.Stored, live, reason string) (bool, string, error) {
	res, err := q.ExecContext(ctx, `UPDATE newsletter_sends SET status = 'skipped', reason = $4
		WHERE campaign_id = $1 AND subject_id IN ($2, $3) AND status = 'queued'`, m.CampaignID, m.SubjectID, live, "at delivery: "+reason)
	if err != nil {
		return false, "", fmt.Errorf("newsletter: record stopped mail: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		if _, err := q.ExecContext(ctx, `UPDATE newsletter_campaigns SET queued = queued - $2, skipped = skipped + $2 WHERE id = $1`,
			m.CampaignID, n); err != nil {
			return false, "", fmt.Errorf("newsletter: record stopped mail: %w", err)
		}
	}
	return true, reason, nil
}

// message builds one recipient's mail: the campaign with their own
// unsubscribe and preferences links, and tracking only where both the
// list and the recipient allow it.
func (s *Service) message(c Campaign, list List, r recipient, sub subject.Subject, addr string) (mail.Message, error) {
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
		SubjectID: sub.ID, To: addr, Subject: c.Subject, Text: text, HTML: body, Kind: campaignKind, Purpose: list.Purpose,
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
		camp, err := s.campaign(ctx, tx, c.List)
		if err != nil {
			return nil
		}
		list, err := s.getList(ctx, tx, camp.ListID)
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
		link, record, err := s.sealEvent(ctx, tx, list, c.Subject, kind, target)
		if err != nil || !record {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO newsletter_events (id, campaign_id, subject_id, kind, url_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			randomToken("ne_"), camp.ID, c.Subject, kind, link, s.d.Clock.Now())
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

// sealEvent asks the door whether the list's purpose may record an open or
// a click of the recipient, and seals a click's link with their key. It
// reports false when nothing is to be recorded: the guard refuses the
// purpose the use of the event's data (an objection, a restriction), or
// that data was erased. A field the policy does not declare is not
// checked and not kept (a click is then recorded without its link). Every
// opened mail and followed link comes here, so a refusal is audited once a
// minute, not once each.
func (s *Service) sealEvent(ctx context.Context, q store.Q, list List, subjectID, kind, target string) (door.Sealed, bool, error) {
	use := door.System(list.Purpose)
	use.Hot = true
	v, err := s.d.Door.Subject(ctx, q, use, subjectID)
	if fault.Is(err, fault.NotFound) {
		return door.Sealed{}, false, nil
	}
	if err != nil {
		return door.Sealed{}, false, err
	}
	if cat, err := s.d.Door.CategoryOf(fieldEvent); err == nil && v.Check(cat) != nil {
		return door.Sealed{}, false, nil
	}
	if kind != "click" {
		return door.Sealed{}, true, nil
	}
	if _, err := s.d.Door.CategoryOf(fieldOutboundLink); err != nil {
		return door.Sealed{}, true, nil
	}
	if len(target) > 2000 {
		target = target[:2000]
	}
	link, err := v.Seal(ctx, fieldOutboundLink, target)
	if _, denied := door.IsDenied(err); denied || errors.Is(err, door.ErrShredded) {
		return door.Sealed{}, false, nil
	}
	return link, err == nil, err
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
