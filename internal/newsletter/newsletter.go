// Package newsletter owns mailing lists, subscriptions and campaigns: lists
// declared in the policy or added by staff; subscribing as a member or by
// email alone, with double opt-in where the list asks for it (the
// confirmation link opens a page whose button confirms, so mail scanners
// that follow links confirm nothing); one-click unsubscribe by a signed,
// list-scoped, per-recipient link and RFC 8058 headers; a preferences page
// by signed link; staff unsubscribing someone who asks; and campaigns,
// queued through the mail outbox in batches to the confirmed subscribers
// for whom the policy guard allows the list's purpose at send time — so an
// objection, a withdrawal, a GPC signal or a marketing suppression recorded
// a second before a batch runs is respected — and checked once more by the
// outbox just before each mail is sent, so one recorded after the batch
// was queued stops the mail still waiting (promise J24). Open and click tracking exists
// only where the policy allows it for the list and the recipient opted in.
//
// Every subscription and unsubscription is also a consent change in the
// consent ledger (scope "list:ID"), with its signed receipt.
package newsletter

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

// Job kinds this package handles.
const (
	JobCampaignBatch = "newsletter.campaign"
	JobPrune         = "newsletter.prune"
)

// Deps are what the service needs.
type Deps struct {
	DB     *store.DB
	Clock  clock.Clock
	Log    *slog.Logger
	Policy policy.Published
	// Guards gives the guard that applies to each recipient: the policy in
	// force, or the stricter of two versions for someone who has not
	// accepted a change that reduced their rights.
	Guards *policy.Guards
	// Door reads each recipient's address for the list's purpose.
	Door     *door.Door
	Subjects *subject.Store
	Ledger   *consent.Ledger
	Links    *consent.Links
	Outbox   *mail.Outbox
	Jobs     *jobs.Runner
	Audit    *audit.Log
	// BaseURL is the public URL mailed links start with.
	BaseURL string
	// BatchSize is how many recipients one campaign job handles in one
	// transaction (default 500).
	BatchSize int
	// BatchInterval paces a campaign: each batch after the first runs this
	// long after the one before (default 0: at once). With BatchSize it
	// bounds a campaign's send rate, on top of the outbox's own limit.
	BatchInterval time.Duration
	// ConfirmTTL is how long a confirmation link works (default 7 days).
	ConfirmTTL time.Duration
	// PreferencesTTL is how long a preferences link works (default 90
	// days); unsubscribe links never expire.
	PreferencesTTL time.Duration
	// SubscribeRate and SubscribeBurst limit subscription requests per
	// client network (default 10 per hour, burst 5).
	SubscribeRate  rate.Limit
	SubscribeBurst int
}

// Service runs newsletters.
type Service struct {
	d       Deps
	contact string // the category of the email field under the policy
	host    string // for List-Id
}

// New returns the service and registers its job handler, its merge hook,
// its consent hook and the outbox's last check of campaign mail.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Clock == nil || d.Policy.Policy == nil || d.Guards == nil || d.Door == nil || d.Subjects == nil || d.Ledger == nil ||
		d.Links == nil || d.Outbox == nil || d.Jobs == nil {
		return nil, errors.New("newsletter: DB, Clock, Policy, Guards, Door, Subjects, Ledger, Links, Outbox and Jobs are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 500
	}
	if d.ConfirmTTL <= 0 {
		d.ConfirmTTL = 7 * 24 * time.Hour
	}
	if d.PreferencesTTL <= 0 {
		d.PreferencesTTL = 90 * 24 * time.Hour
	}
	if d.SubscribeRate == 0 {
		d.SubscribeRate = rate.Every(6 * time.Minute)
	}
	if d.SubscribeBurst <= 0 {
		d.SubscribeBurst = 5
	}
	d.BaseURL = strings.TrimRight(d.BaseURL, "/")
	u, err := url.Parse(d.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("newsletter: base URL %q is not an absolute URL", d.BaseURL)
	}
	s := &Service{
		d:       d,
		contact: d.Policy.Policy.CategoryOfField("email"),
		host:    u.Hostname(),
	}
	d.Jobs.Handle(JobCampaignBatch, s.runCampaignBatch)
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		_, err := s.Prune(ctx)
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	d.Subjects.OnMerge(s.merge)
	d.Ledger.OnChange(s.onConsentChange)
	d.Outbox.BeforeSend(campaignKind, s.checkBeforeSend)
	return s, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "newsletter".
func Migrations() store.Migrations {
	return store.Embedded("newsletter", migrationFiles)
}

// Tables declares this package's tables for the personal-data registry.
func Tables() []registry.Table {
	sub := func(name string) registry.Column { return registry.Column{Name: name, Field: fieldSubscription} }
	return []registry.Table{
		{
			Name: "newsletter_lists", Owner: "newsletter", Origin: registry.System,
			Description: "Mailing lists, from the policy or added by staff. No personal data.",
			Columns: cols("id", "name", "description", "purpose", "double_opt_in", "track_opens", "track_clicks",
				"source", "open", "created_at", "updated_at"),
		},
		{
			Name: "newsletter_subscriptions", Owner: "newsletter", Dataset: "newsletter_subscriptions",
			SubjectColumn: "subject_id", Origin: registry.Provided, SourceColumn: "source",
			PolicyVersionColumn: "policy_version",
			Description:         "A person's subscription to a list: when and where they subscribed, confirmed and unsubscribed, and the consent record behind it.",
			// status and unsubscribe_method hold values code chooses (CHECK
			// lists) and tracking is a flag; the page a person subscribed
			// from is free text, sealed.
			Columns: []registry.Column{
				{Name: "id"}, sub("list_id"), {Name: "subject_id"}, sub("status"), {Name: "source"},
				{Name: "source_page_sealed", Field: fieldSubscription, Sensitive: true},
				{Name: "policy_version"}, {Name: "confirm_nonce"}, {Name: "confirm_sent_at"}, {Name: "confirm_sends"},
				{Name: "consent_record_id"}, sub("tracking"), {Name: "created_at"}, {Name: "confirmed_at"},
				{Name: "unsubscribed_at"}, sub("unsubscribe_method"), {Name: "updated_at"},
				{Name: "source_page", Field: fieldSubscription, Legacy: true},
			},
		},
		{
			Name: "newsletter_rate", Owner: "newsletter", Origin: registry.System,
			Columns:     []registry.Column{{Name: "network_index", Hashed: true}, {Name: "tokens"}, {Name: "updated_at"}},
			Description: "How many subscription requests each client network may still send, shared by every process: a keyed digest of the network (a /24 or /48, never an address), kept until its allowance is full again.",
		},
		{
			Name: "newsletter_campaigns", Owner: "newsletter", Origin: registry.System,
			Description: "Campaigns staff composed. The text is the operator's; created_by is a staff member's pseudonymous id, kept as the record of who sent what.",
			Columns: cols("id", "list_id", "subject_line", "body_text", "body_html", "created_by", "status",
				"cursor_subject", "queued", "skipped", "created_at", "completed_at"),
		},
		{
			Name: "newsletter_sends", Owner: "newsletter", Dataset: "newsletter_mailings",
			Dated:         registry.Dating{Column: "created_at"},
			SubjectColumn: "subject_id", Origin: registry.Observed, Source: "steward",
			Description: "Which campaigns were mailed to the person, or why one was not (the guard's reason).",
			// status and reason hold values code chooses (CHECK lists).
			Columns: []registry.Column{
				{Name: "campaign_id", Field: "mail"}, {Name: "subject_id"}, {Name: "status", Field: "mail"},
				{Name: "reason", Field: "mail"}, {Name: "outbox_id"}, {Name: "created_at"},
			},
		},
		{
			Name: "newsletter_events", Owner: "newsletter", Dataset: "newsletter_tracking",
			Dated:         registry.Dating{Column: "created_at"},
			SubjectColumn: "subject_id", Origin: registry.Observed, Source: "observed",
			Description: "Opens and clicks of campaign mails, only where the policy allows tracking for the list and the person opted in.",
			// kind is 'open' or 'click' (a CHECK list); the link followed is
			// sealed; campaign_id names the site's own mailing, no value of
			// the person's.
			Columns: []registry.Column{
				{Name: "id"}, {Name: "campaign_id"}, {Name: "subject_id"}, {Name: "kind", Field: fieldEvent},
				{Name: "url_sealed", Field: fieldOutboundLink, Sensitive: true}, {Name: "created_at"},
				{Name: "url", Field: fieldOutboundLink, Legacy: true},
			},
		},
	}
}

// The policy fields this package's sealed columns hold.
const (
	fieldSubscription = "subscription"  // a subscription and how it began
	fieldEvent        = "event"         // an open or a click
	fieldOutboundLink = "outbound_link" // the link a click followed
)

func cols(names ...string) []registry.Column {
	out := make([]registry.Column, len(names))
	for i, n := range names {
		out[i] = registry.Column{Name: n}
	}
	return out
}

// List is a mailing list.
type List struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Purpose     string `json:"purpose"`
	DoubleOptIn bool   `json:"double_opt_in"`
	TrackOpens  bool   `json:"track_opens"`
	TrackClicks bool   `json:"track_clicks"`
	Source      string `json:"source"`
	Open        bool   `json:"open"`
}

// Tracks reports whether the list may track opens or clicks at all.
func (l List) Tracks() bool { return l.TrackOpens || l.TrackClicks }

var listIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// checkPurpose: a list must serve a purpose of the policy that rests on
// consent and is direct marketing (a newsletter is both).
func (s *Service) checkPurpose(id string) error {
	pu := s.d.Policy.Policy.Purpose(id)
	if pu == nil || pu.Builtin {
		return fault.FieldError("purpose", "the policy declares no purpose %q", id)
	}
	if pu.Basis != policy.BasisConsent {
		return fault.FieldError("purpose", "a newsletter's purpose must be based on consent; %q is based on %s", id, pu.Basis)
	}
	return nil
}

// SyncLists makes the lists table match the policy: declared lists are
// created or updated; lists the policy no longer declares are closed (kept
// for their history, not offered). Run at start.
func (s *Service) SyncLists(ctx context.Context) error {
	now := s.d.Clock.Now()
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		declared := map[string]bool{}
		for _, n := range s.d.Policy.Policy.Newsletters {
			declared[n.ID] = true
			_, err := tx.ExecContext(ctx, `INSERT INTO newsletter_lists (id, name, description, purpose, double_opt_in, track_opens, track_clicks, source, open, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, 'policy', TRUE, $8, $8)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, purpose = excluded.purpose,
					double_opt_in = excluded.double_opt_in, track_opens = excluded.track_opens, track_clicks = excluded.track_clicks,
					source = 'policy', open = TRUE, updated_at = excluded.updated_at`,
				n.ID, n.Name, n.Description, n.Purpose, n.DoubleOptIn, n.TrackOpens, n.TrackClicks, now)
			if err != nil {
				return fmt.Errorf("newsletter: sync list %s: %w", n.ID, err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, source, purpose FROM newsletter_lists`)
		if err != nil {
			return fmt.Errorf("newsletter: sync lists: %w", err)
		}
		var closeIDs []string
		for rows.Next() {
			var id, source, purpose string
			if err := rows.Scan(&id, &source, &purpose); err != nil {
				rows.Close()
				return fmt.Errorf("newsletter: sync lists: %w", err)
			}
			// A policy list the policy dropped, or a staff list whose
			// purpose is no longer a consent purpose, stops being offered.
			if (source == "policy" && !declared[id]) || (source == "staff" && s.checkPurpose(purpose) != nil) {
				closeIDs = append(closeIDs, id)
			}
		}
		rows.Close()
		for _, id := range closeIDs {
			if _, err := tx.ExecContext(ctx, `UPDATE newsletter_lists SET open = FALSE, updated_at = $2 WHERE id = $1`, id, now); err != nil {
				return fmt.Errorf("newsletter: close list %s: %w", id, err)
			}
		}
		return nil
	})
}

// ListInput is a list staff add.
type ListInput struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Purpose     string `json:"purpose"`
}

// CreateList adds a staff list. Staff lists always use double opt-in and
// never track: only the policy can allow less.
func (s *Service) CreateList(ctx context.Context, staffID string, in ListInput) (List, error) {
	if !listIDRE.MatchString(in.ID) {
		return List{}, fault.FieldError("id", "a list id is 1 to 64 lower-case letters, digits, '-' or '_'")
	}
	if strings.TrimSpace(in.Name) == "" {
		return List{}, fault.FieldError("name", "a list needs a name")
	}
	if err := mail.CheckText("name", in.Name, 200, false); err != nil {
		return List{}, err
	}
	if err := mail.CheckText("description", in.Description, 2000, true); err != nil {
		return List{}, err
	}
	if err := s.checkPurpose(in.Purpose); err != nil {
		return List{}, err
	}
	l := List{ID: in.ID, Name: strings.TrimSpace(in.Name), Description: in.Description, Purpose: in.Purpose, DoubleOptIn: true, Source: "staff", Open: true}
	now := s.d.Clock.Now()
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO newsletter_lists (id, name, description, purpose, double_opt_in, track_opens, track_clicks, source, open, created_at, updated_at)
			VALUES ($1, $2, $3, $4, TRUE, FALSE, FALSE, 'staff', TRUE, $5, $5) ON CONFLICT (id) DO NOTHING`,
			l.ID, l.Name, l.Description, l.Purpose, now)
		if err != nil {
			return fmt.Errorf("newsletter: create list: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &fault.Error{Code: fault.Conflict, Field: "id", Message: "a list with this id exists"}
		}
		return s.audit(ctx, tx, "staff:"+staffID, "newsletter.list_created", "", map[string]string{"list": l.ID})
	})
	return l, err
}

const listColumns = `id, name, description, purpose, double_opt_in, track_opens, track_clicks, source, open`

func scanList(row interface{ Scan(...any) error }) (List, error) {
	var l List
	err := row.Scan(&l.ID, &l.Name, &l.Description, &l.Purpose, &l.DoubleOptIn, &l.TrackOpens, &l.TrackClicks, &l.Source, &l.Open)
	return l, err
}

// lists returns the lists, only the open ones when openOnly.
func (s *Service) lists(ctx context.Context, q store.Q, openOnly bool) ([]List, error) {
	query := `SELECT ` + listColumns + ` FROM newsletter_lists`
	if openOnly {
		query += ` WHERE open = TRUE`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("newsletter: lists: %w", err)
	}
	defer rows.Close()
	out := []List{}
	for rows.Next() {
		l, err := scanList(rows)
		if err != nil {
			return nil, fmt.Errorf("newsletter: lists: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// getList returns a list. fault.NotFound when there is none.
func (s *Service) getList(ctx context.Context, q store.Q, id string) (List, error) {
	if !listIDRE.MatchString(id) {
		return List{}, fault.New(fault.NotFound, "no such newsletter")
	}
	l, err := scanList(q.QueryRowContext(ctx, `SELECT `+listColumns+` FROM newsletter_lists WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return List{}, fault.New(fault.NotFound, "no such newsletter")
	}
	if err != nil {
		return List{}, fmt.Errorf("newsletter: get list: %w", err)
	}
	return l, nil
}

func (s *Service) audit(ctx context.Context, q store.Q, actor, action, subjectID string, detail map[string]string) error {
	if s.d.Audit == nil {
		return nil
	}
	if err := s.d.Audit.Record(ctx, q, audit.Event{Actor: actor, Action: action, Subject: subjectID, Detail: detail}); err != nil {
		return fmt.Errorf("newsletter: audit: %w", err)
	}
	return nil
}

// Prune deletes subscriptions that were never confirmed and whose last
// confirmation link has expired: nobody agreed to them, so nothing about
// them is kept. (The email-only subject such a request created is left to
// the retention sweep, which knows whether anything else refers to it.)
func (s *Service) Prune(ctx context.Context) (int64, error) {
	cutoff := s.d.Clock.Now().Add(-s.d.ConfirmTTL)
	res, err := s.d.DB.ExecContext(ctx, `DELETE FROM newsletter_subscriptions WHERE status = 'pending'
		AND (confirm_sent_at < $1 OR (confirm_sent_at IS NULL AND created_at < $1))`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("newsletter: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	// The limit's refilled rows go too (not counted: they hold no one).
	_, err = s.pruneRate(ctx)
	return n, err
}

// GetList returns one list, or fault.NotFound.
func (s *Service) GetList(ctx context.Context, id string) (List, error) {
	return s.getList(ctx, s.d.DB, id)
}

// Lists returns the lists (only those open for subscription when
// openOnly).
func (s *Service) Lists(ctx context.Context, openOnly bool) ([]List, error) {
	return s.lists(ctx, s.d.DB, openOnly)
}

// Subscriptions returns the subject's subscriptions, opened for their own
// request (the privacy centre, the API's "my newsletters").
func (s *Service) Subscriptions(ctx context.Context, subjectID string) ([]Subscription, error) {
	subs, err := s.subscriptions(ctx, s.d.DB, subjectID)
	if err != nil || len(subs) == 0 {
		return subs, err
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), subjectID)
	if err != nil {
		return nil, err
	}
	for i := range subs {
		if err := s.openPage(ctx, v, &subs[i]); err != nil {
			return nil, err
		}
	}
	return subs, nil
}

// Campaign returns one campaign, or fault.NotFound.
func (s *Service) Campaign(ctx context.Context, id string) (Campaign, error) {
	return s.campaign(ctx, s.d.DB, id)
}

// Campaigns returns a list's campaigns with their progress.
func (s *Service) Campaigns(ctx context.Context, listID string) ([]Campaign, error) {
	return s.campaigns(ctx, s.d.DB, listID)
}
