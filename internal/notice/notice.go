// Package notice owns notices sent to many people at once and the
// acceptance of policy changes that reduce rights (promises M16, J14):
//
//   - When a published policy version is significant, a notice is queued,
//     in batches, to every member and subscriber; each delivery (or the
//     reason there was none) is recorded per recipient.
//   - A version that reduces rights applies to a person only once they
//     accept it (when the policy's changes.significant_requires_consent is
//     set). Until then the guard applied to them is the stricter of the
//     version they last accepted (or were first recorded under) and the
//     current one (policy.Guards chooses it). Members accept in the privacy
//     centre, which records the acceptance in their subject state; people
//     known only by email have no way to accept, so the stricter guard
//     stays theirs.
//   - Staff send broadcast notices (a change of ownership, a breach) with
//     the same machinery, to everyone Steward holds an address for.
//
// Notices are transactional, not marketing: they are not stopped by a
// marketing objection or suppression, carry no unsubscribe link, and go
// only to addresses that were verified (members) or given by the person
// (email-only subjects).
package notice

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

// JobBatch is the job kind that sends one batch of a notice.
const JobBatch = "notice.batch"

// Recipient is someone a notice may go to.
type Recipient struct {
	SubjectID string
	Email     string
	Member    bool
	// Verified says the address was proved (a member's verification);
	// email-only subjects gave their address themselves and count as
	// reachable.
	Verified bool
	// Skip, when set, says why the person is not mailed (the door refused
	// their address for the notices' purpose).
	Skip string
}

// Directory enumerates the people Steward holds a live address for, in
// subject id order.
type Directory interface {
	Recipients(ctx context.Context, q store.Q, afterID string, limit int) ([]Recipient, error)
}

// Subscribers says which subjects hold a confirmed newsletter
// subscription (newsletter.Service satisfies it): policy-change notices go
// to them as well as to members.
type Subscribers interface {
	IsSubscriber(ctx context.Context, q store.Q, ids []string) (map[string]bool, error)
}

// Deps are what the service needs.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published
	Guards   *policy.Guards // which published changes wait for acceptance
	Door     *door.Door     // opens recipients' addresses
	Subjects *subject.Store
	Outbox   *mail.Outbox
	Jobs     *jobs.Runner
	Audit    *audit.Log
	// Directory lists the people Steward holds an address for.
	Directory   Directory
	Subscribers Subscribers
	BaseURL     string
	BatchSize   int // default 500
}

// Service sends notices and records acceptances of policy changes.
type Service struct {
	d       Deps
	purpose string // the purpose notices are mailed for
}

// New returns the service and registers its job handler and merge hook.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Clock == nil || d.Policy.Policy == nil || d.Guards == nil || d.Door == nil || d.Subjects == nil || d.Outbox == nil ||
		d.Jobs == nil || d.Directory == nil || d.Subscribers == nil {
		return nil, errors.New("notice: DB, Clock, Policy, Guards, Door, Subjects, Outbox, Jobs, Directory and Subscribers are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 500
	}
	purpose, err := noticePurpose(d.Policy.Policy)
	if err != nil {
		return nil, err
	}
	fill := func(dir *SubjectDirectory) {
		if dir.Subjects == nil {
			dir.Subjects = d.Subjects
		}
		if dir.Door == nil {
			dir.Door = d.Door
		}
		if dir.Purpose == "" {
			dir.Purpose = purpose
		}
	}
	switch dir := d.Directory.(type) {
	case SubjectDirectory:
		fill(&dir)
		d.Directory = dir
	case *SubjectDirectory:
		fill(dir)
	}
	d.BaseURL = strings.TrimRight(d.BaseURL, "/")
	s := &Service{d: d, purpose: purpose}
	d.Jobs.Handle(JobBatch, s.runBatch)
	d.Subjects.OnMerge(s.merge)
	return s, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "notice".
func Migrations() store.Migrations {
	return store.Embedded("notice", migrationFiles)
}

// Tables declares this package's tables for the personal-data registry.
func Tables() []registry.Table {
	plain := func(names ...string) []registry.Column {
		out := make([]registry.Column, len(names))
		for i, n := range names {
			out[i] = registry.Column{Name: n}
		}
		return out
	}
	return []registry.Table{
		{
			Name: "notices", Owner: "notice", Origin: registry.System,
			Description: "Policy-change and broadcast notices (the text the operator wrote); created_by is a staff member's pseudonymous id or \"system\".",
			Columns: plain("id", "kind", "policy_version", "subject_line", "body_text", "audience", "created_by", "status",
				"cursor_subject", "queued", "skipped", "created_at", "completed_at"),
		},
		{
			Name: "notice_deliveries", Owner: "notice", Dataset: "notices_received",
			Dated:         registry.Dating{Column: "created_at"},
			SubjectColumn: "subject_id", Origin: registry.Observed, Source: "steward",
			Description: "Each notice as it concerned the person: mailed (with the outbox message) or why not.",
			Columns: []registry.Column{
				{Name: "notice_id", Field: "mail"}, {Name: "subject_id"}, {Name: "status", Field: "mail"},
				{Name: "reason", Field: "mail"}, {Name: "outbox_id"}, {Name: "created_at"},
			},
		},
	}
}

// Kind is what a notice is about.
type Kind string

const (
	KindPolicyChange Kind = "policy-change"
	KindOwnership    Kind = "ownership" // a merger, acquisition or sale (J14)
	KindBreach       Kind = "breach"
	KindOther        Kind = "other"
)

// Audiences.
const (
	AudienceMembersAndSubscribers = "members-and-subscribers"
	AudienceEveryone              = "everyone"
)

// Notice is one notice and its progress.
type Notice struct {
	ID            string     `json:"id"`
	Kind          Kind       `json:"kind"`
	PolicyVersion int        `json:"policy_version,omitempty"`
	Subject       string     `json:"subject"`
	Text          string     `json:"text"`
	Audience      string     `json:"audience"`
	CreatedBy     string     `json:"created_by"`
	Status        string     `json:"status"`
	Queued        int        `json:"queued"`
	Skipped       int        `json:"skipped"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
}

const noticeColumns = `id, kind, policy_version, subject_line, body_text, audience, created_by, status, queued, skipped, created_at, completed_at, cursor_subject`

func scanNotice(row interface{ Scan(...any) error }) (Notice, string, error) {
	var n Notice
	var kind, cursor string
	var version sql.NullInt64
	var done sql.NullTime
	err := row.Scan(&n.ID, &kind, &version, &n.Subject, &n.Text, &n.Audience, &n.CreatedBy, &n.Status, &n.Queued, &n.Skipped, &n.CreatedAt, &done, &cursor)
	n.Kind = Kind(kind)
	n.PolicyVersion = int(version.Int64)
	n.CreatedAt = n.CreatedAt.UTC()
	if done.Valid {
		t := done.Time.UTC()
		n.CompletedAt = &t
	}
	return n, cursor, err
}

// get returns a notice with its progress.
func (s *Service) get(ctx context.Context, q store.Q, id string) (Notice, error) {
	n, _, err := scanNotice(q.QueryRowContext(ctx, `SELECT `+noticeColumns+` FROM notices WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Notice{}, fault.New(fault.NotFound, "no such notice")
	}
	if err != nil {
		return Notice{}, fmt.Errorf("notice: get: %w", err)
	}
	return n, nil
}

// list returns every notice, newest first.
func (s *Service) list(ctx context.Context, q store.Q) ([]Notice, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+noticeColumns+` FROM notices ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("notice: list: %w", err)
	}
	defer rows.Close()
	out := []Notice{}
	for rows.Next() {
		n, _, err := scanNotice(rows)
		if err != nil {
			return nil, fmt.Errorf("notice: list: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Delivery is a notice as it concerned one person.
type Delivery struct {
	NoticeID  string    `json:"notice_id"`
	SubjectID string    `json:"subject_id"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	OutboxID  string    `json:"outbox_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// deliveries returns the per-recipient record of a notice.
func (s *Service) deliveries(ctx context.Context, q store.Q, noticeID string) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT notice_id, subject_id, status, reason, outbox_id, created_at FROM notice_deliveries WHERE notice_id = $1 ORDER BY subject_id`, noticeID)
	if err != nil {
		return nil, fmt.Errorf("notice: deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.NoticeID, &d.SubjectID, &d.Status, &d.Reason, &d.OutboxID, &d.CreatedAt); err != nil {
			return nil, fmt.Errorf("notice: deliveries: %w", err)
		}
		d.CreatedAt = d.CreatedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// BroadcastInput is a notice staff send to everyone.
type BroadcastInput struct {
	Kind    Kind   `json:"kind"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

// Broadcast queues a notice to everyone Steward holds an address for
// (promise J14 for a change of ownership). Each recipient is recorded.
func (s *Service) Broadcast(ctx context.Context, staffID string, in BroadcastInput) (Notice, error) {
	switch in.Kind {
	case KindOwnership, KindBreach, KindOther:
	default:
		return Notice{}, fault.FieldError("kind", "kind must be ownership, breach or other")
	}
	in.Subject = strings.TrimSpace(in.Subject)
	if in.Subject == "" {
		return Notice{}, fault.FieldError("subject", "a notice needs a subject")
	}
	if err := mail.CheckText("subject", in.Subject, 200, false); err != nil {
		return Notice{}, err
	}
	if strings.TrimSpace(in.Text) == "" {
		return Notice{}, fault.FieldError("text", "a notice needs a text")
	}
	if err := mail.CheckText("text", in.Text, 256<<10, true); err != nil {
		return Notice{}, err
	}
	n := Notice{ID: store.NewID("nt_"), Kind: in.Kind, Subject: in.Subject, Text: in.Text, Audience: AudienceEveryone,
		CreatedBy: "staff:" + staffID, Status: "queued", CreatedAt: s.d.Clock.Now()}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.insert(ctx, tx, n); err != nil {
			return err
		}
		return s.audit(ctx, tx, n.CreatedBy, "notice.broadcast", map[string]string{"notice": n.ID, "kind": string(n.Kind)})
	})
	if err != nil {
		return Notice{}, err
	}
	s.d.Jobs.Wake()
	return n, nil
}

// insert stores a notice and queues its first batch. It reports false,
// queueing nothing, when a notice of the same kind and policy version
// exists (two processes announcing one version): ON CONFLICT keeps the
// transaction usable on PostgreSQL, where a failed insert would abort it.
func (s *Service) insert(ctx context.Context, tx *sql.Tx, n Notice) (bool, error) {
	var version any
	if n.PolicyVersion > 0 {
		version = n.PolicyVersion
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO notices (id, kind, policy_version, subject_line, body_text, audience, created_by, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8) ON CONFLICT DO NOTHING`, n.ID, string(n.Kind), version, n.Subject, n.Text, n.Audience, n.CreatedBy, n.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("notice: insert: %w", err)
	}
	if k, err := res.RowsAffected(); err != nil || k == 0 {
		return false, err
	}
	return true, s.enqueue(ctx, tx, n.ID, "")
}

type batchPayload struct {
	Notice string `json:"notice"`
	After  string `json:"after"`
}

// noticePriority puts notice batches behind transactional jobs, ahead of
// campaign batches (-5) and of bulk deliveries (-10).
const noticePriority = -4

func (s *Service) enqueue(ctx context.Context, q store.Q, noticeID, after string) error {
	if _, err := s.d.Jobs.Enqueue(ctx, q, JobBatch, batchPayload{Notice: noticeID, After: after},
		jobs.Options{Key: "notice:" + noticeID + ":" + after, Priority: noticePriority}); err != nil {
		return fmt.Errorf("notice: queue batch: %w", err)
	}
	return nil
}

func (s *Service) audit(ctx context.Context, q store.Q, actor, action string, detail map[string]string) error {
	if s.d.Audit == nil {
		return nil
	}
	if err := s.d.Audit.Record(ctx, q, audit.Event{Actor: actor, Action: action, Detail: detail}); err != nil {
		return fmt.Errorf("notice: audit: %w", err)
	}
	return nil
}

// notifiesByEmail reports whether the policy announces changes by mail.
func (s *Service) notifiesByEmail() bool {
	n := s.d.Policy.Policy.Changes.Notify
	return n == "" || strings.Contains(n, "email")
}

// Reconcile announces the version in force when it is a significant change
// that was not announced yet: run after publishing the policy at start.
// It is idempotent (one policy-change notice per version), so a crash
// between publishing and announcing is repaired at the next start.
func (s *Service) Reconcile(ctx context.Context) (*Notice, error) {
	v := s.d.Policy.Version
	if !v.Significant || v.Classification == "first" || !s.notifiesByEmail() {
		return nil, nil
	}
	var out *Notice
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM notices WHERE kind = $1 AND policy_version = $2`, string(KindPolicyChange), v.Number).Scan(&exists); err != nil {
			return fmt.Errorf("notice: reconcile: %w", err)
		}
		if exists > 0 {
			return nil
		}
		n := Notice{ID: store.NewID("nt_"), Kind: KindPolicyChange, PolicyVersion: v.Number,
			Subject:  s.d.Policy.Policy.Controller.Name + ": our privacy policy changes",
			Text:     s.policyChangeText(v),
			Audience: AudienceMembersAndSubscribers, CreatedBy: "system", Status: "queued", CreatedAt: s.d.Clock.Now()}
		created, err := s.insert(ctx, tx, n)
		if err != nil || !created {
			return err // !created: another process announced it first
		}
		out = &n
		return s.audit(ctx, tx, "system", "notice.policy_change", map[string]string{"notice": n.ID, "policy_version": strconv.Itoa(v.Number)})
	})
	if err != nil {
		return nil, err
	}
	if out != nil {
		s.d.Jobs.Wake()
	}
	return out, nil
}

func (s *Service) policyChangeText(v policy.Version) string {
	p := s.d.Policy.Policy
	var b strings.Builder
	fmt.Fprintf(&b, "%s has changed its privacy policy. Version %d takes effect on %s.\n\nWhat changed:\n",
		p.Controller.Name, v.Number, v.EffectiveDate.Format("2 January 2006"))
	for _, r := range v.Reasons {
		b.WriteString("- " + r + "\n")
	}
	fmt.Fprintf(&b, "\nRead the new policy: %s/privacy/versions/%d\n", s.d.BaseURL, v.Number)
	if v.ReducesRights && p.Changes.SignificantRequiresConsent {
		fmt.Fprintf(&b, "\nThis change reduces your rights, so it applies to you only if you accept it. "+
			"Until you do, we keep applying to your data whichever of the old and the new terms protects you more. "+
			"If you have an account, you can read the change and accept it in your privacy centre: %s/account/privacy\n", s.d.BaseURL)
	}
	fmt.Fprintf(&b, "\nQuestions: %s\n", p.Controller.Contact)
	return b.String()
}

// runBatch sends one batch of a notice to the next recipients after the
// cursor. Like campaigns, the batch, its per-recipient records, the cursor,
// the next batch's job and the job's completion commit together.
func (s *Service) runBatch(ctx context.Context, j jobs.Job) error {
	var p batchPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		n, cursor, err := scanNotice(tx.QueryRowContext(ctx, `SELECT `+noticeColumns+` FROM notices WHERE id = $1`, p.Notice))
		if errors.Is(err, sql.ErrNoRows) {
			return jobs.Permanent(fmt.Errorf("notice: %s is gone", p.Notice))
		}
		if err != nil {
			return fmt.Errorf("notice: batch: %w", err)
		}
		if n.Status == "sent" || cursor != p.After {
			return s.d.Jobs.Complete(ctx, tx, j)
		}
		pr, err := s.d.Outbox.SendBatch(ctx, tx, noticeBatch{s: s, n: n}, p.After, s.d.BatchSize)
		if err != nil {
			return fmt.Errorf("notice: batch: %w", err)
		}
		status := "sending"
		var completed any
		if pr.Done {
			status, completed = "sent", pr.At
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notices SET status = $2, cursor_subject = $3, queued = queued + $4, skipped = skipped + $5,
			completed_at = $6 WHERE id = $1`, n.ID, status, pr.After, pr.Queued, pr.Skipped, completed); err != nil {
			return fmt.Errorf("notice: progress: %w", err)
		}
		if !pr.Done {
			if err := s.enqueue(ctx, tx, n.ID, pr.After); err != nil {
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

// deliveriesTable holds a notice's per-recipient records.
var deliveriesTable = mail.DeliveryTable{Name: "notice_deliveries", Key: "notice_id"}

// noticeBatch is one batch of a notice as the outbox's SendBatch runs it:
// the next people of the directory, those outside the notice's audience
// passed over without a record.
type noticeBatch struct {
	s *Service
	n Notice
}

func (b noticeBatch) Next(ctx context.Context, tx *sql.Tx, after string, limit int) (mail.Page, error) {
	s, n := b.s, b.n
	recips, err := s.d.Directory.Recipients(ctx, tx, after, limit)
	if err != nil {
		return mail.Page{}, fmt.Errorf("notice: batch recipients: %w", err)
	}
	page := mail.Page{Full: len(recips) == limit}
	if len(recips) > 0 {
		page.Last = recips[len(recips)-1].SubjectID
	}
	subscribed := map[string]bool{}
	if n.Audience == AudienceMembersAndSubscribers {
		var ids []string
		for _, r := range recips {
			if !r.Member {
				ids = append(ids, r.SubjectID)
			}
		}
		if subscribed, err = s.d.Subscribers.IsSubscriber(ctx, tx, ids); err != nil {
			return mail.Page{}, err
		}
	}
	for _, r := range recips {
		if n.Audience == AudienceMembersAndSubscribers && !r.Member && !subscribed[r.SubjectID] {
			continue // not in the audience: a commenter who never subscribed
		}
		if r.Skip != "" {
			page.Recipients = append(page.Recipients, mail.Recipient{SubjectID: r.SubjectID, Skip: r.Skip})
			continue
		}
		if r.Member && !r.Verified {
			// Unverified addresses are mailed nothing but verification:
			// the address may not be the member's.
			page.Recipients = append(page.Recipients, mail.Recipient{SubjectID: r.SubjectID, Skip: "address not verified"})
			continue
		}
		page.Recipients = append(page.Recipients, mail.Recipient{SubjectID: r.SubjectID,
			Message: mail.Message{SubjectID: r.SubjectID, To: r.Email, Subject: n.Subject, Text: n.Text, Kind: "notice", Purpose: s.purpose}})
	}
	return page, nil
}

func (b noticeBatch) Record(ctx context.Context, tx *sql.Tx, ds []mail.Delivery, now time.Time) error {
	return deliveriesTable.Record(ctx, tx, b.s.d.DB.Engine, b.n.ID, ds, now)
}

// merge re-points a merged subject's rows; a notice both received stays
// recorded once, under the surviving id.
func (s *Service) merge(ctx context.Context, tx *sql.Tx, from, into string) error {
	for _, stmt := range []string{
		`DELETE FROM notice_deliveries WHERE subject_id = $1 AND notice_id IN (SELECT notice_id FROM notice_deliveries WHERE subject_id = $2)`,
		`UPDATE notice_deliveries SET subject_id = $2 WHERE subject_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, from, into); err != nil {
			return fmt.Errorf("notice: merge: %w", err)
		}
	}
	return nil
}

// policyURL is the public address of a version.
func (s *Service) policyURL(n int) string {
	return s.d.BaseURL + "/privacy/versions/" + url.PathEscape(strconv.Itoa(n))
}

// Get returns one notice, or fault.NotFound.
func (s *Service) Get(ctx context.Context, id string) (Notice, error) { return s.get(ctx, s.d.DB, id) }

// List returns every notice with its progress, newest first.
func (s *Service) List(ctx context.Context) ([]Notice, error) { return s.list(ctx, s.d.DB) }

// Deliveries returns the per-recipient record of a notice.
func (s *Service) Deliveries(ctx context.Context, noticeID string) ([]Delivery, error) {
	return s.deliveries(ctx, s.d.DB, noticeID)
}

// Pending returns the policy changes that reduced rights and wait for the
// subject's acceptance.
func (s *Service) Pending(ctx context.Context, subjectID string) ([]PendingChange, error) {
	return s.pending(ctx, s.d.DB, subjectID)
}

// Acceptances returns the policy versions the subject accepted.
func (s *Service) Acceptances(ctx context.Context, subjectID string) ([]Acceptance, error) {
	return s.acceptances(ctx, s.d.DB, subjectID)
}

// noticePurpose is the purpose notices are mailed for: the first declared
// purpose with a legal-obligation basis that may use addresses (telling
// people of changes that concern them is an obligation of the
// controller).
func noticePurpose(p *policy.Policy) (string, error) {
	cat := p.CategoryOfField("email")
	for _, pu := range p.Purposes() {
		if !pu.Builtin && pu.Basis == policy.BasisLegalObligation && slices.Contains(pu.Uses, cat) {
			return pu.ID, nil
		}
	}
	return "", fmt.Errorf("notice: the policy declares no purpose with a legal-obligation basis that uses %s, so notices could not be mailed", cat)
}
