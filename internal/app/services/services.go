// Package services builds every domain service of a Steward on one
// database, in the order they depend on each other: the published policy
// and its guards, the door to personal data, subjects, jobs, mail,
// identity, consent, newsletters and notices, rights, activity and
// analytics. The app builds them this way before it puts the web layer on
// top, and the web layer's tests build them the same way, so no test runs
// a server with a capability missing.
package services

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/content"
	"steward/internal/disclosure"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/openid"
	"steward/internal/payment"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/retention"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/subject"
	"steward/internal/support"
)

// Config is what the services are told from outside.
type Config struct {
	// BaseURL is the public URL, for links in mail; "" uses DefaultBase.
	BaseURL     string
	DefaultBase string
	SMTPURL     string
	MailFrom    string
	// DataDir, when set, holds the erasure ledger file that `steward
	// rights reapply` reads after a backup is restored.
	DataDir string
	// ServesDemo says /demo/ is served: the demo site then accepts events
	// from Steward's own origin, whatever port it listens on.
	ServesDemo bool
	// GeoIPPath is an operator MMDB for region and city ("" = country).
	GeoIPPath string
	// BlobURL is where uploads are kept ("" = the blobs directory of the
	// data directory; see blob.Config), with S3 credentials when it names
	// a bucket.
	BlobURL                  string
	S3AccessKey, S3SecretKey string
	// Uploads bounds what members upload (content's defaults when zero).
	Uploads content.Limits
	// SupportAddress is the support desk's mail address; replies to
	// requests go to its "+token" form.
	SupportAddress string
	// Support bounds what support requests hold (its defaults when zero).
	Support support.Limits
	// PaymentSecret is the signing secret of the payment processor's
	// webhook endpoint ("" accepts no delivery: nothing verifies).
	PaymentSecret string
	// Getenv reads the environment: the client secrets of the identity
	// providers the policy declares are in the variables it names.
	Getenv func(string) string
}

// Options adjust Build for tests.
type Options struct {
	// Identity, when set, may change identity's dependencies (lower
	// argon2id cost for fast tests, roomier rate limits).
	Identity func(*identity.Deps)
}

// Services are a Steward's domain services on one database.
type Services struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published // the policy file, as published in the database
	Guards   *policy.Guards   // the guard for each subject
	Versions *policy.Archive
	Master   *door.Master
	Door     *door.Door
	Subjects *subject.Store
	Audit    *audit.Log
	Jobs     *jobs.Runner
	Outbox   *mail.Outbox
	Identity *identity.Service
	Consent  *consent.Ledger
	// Newsletters and notices (policy changes, ownership and breach
	// broadcasts).
	Newsletters *newsletter.Service
	Notices     *notice.Service
	Rights      *rights.Service
	// What members post, and the store of their files.
	Content *content.Service
	Blobs   blob.Store
	// The support desk: requests, exchanges, recorded calls.
	Support *support.Service
	// Payment references from the processor's webhook.
	Payment *payment.Service
	// The OpenID provider of the operator's own applications.
	OpenID *openid.Service
	// What leaves for recipients, legal requests, the transparency report.
	Disclosure *disclosure.Service
	// Cookieless collection and the reports read from it.
	Activity  *activity.Collector
	Analytics *analytics.Service
	Metrics   *prometheus.Registry
	// The retention sweep and legal holds.
	Retention *retention.Service
	// Rollups are the aggregates the sweep ages out, for a second sweep
	// built over the same database (tests).
	Rollups []retention.Rollup

	tmpBlobs string // a temporary blob directory to remove at Close
}

// Build publishes pol as the policy in force (a new version when it
// changed) and builds every service on db, whose schema is current. The
// collector's writer starts here, so it works before anything serves;
// Close drains it.
func Build(ctx context.Context, db *store.DB, pol *policy.Policy, master *door.Master, clk clock.Clock, log *slog.Logger, cfg Config, opt Options) (*Services, error) {
	s := &Services{DB: db, Clock: clk, Log: log, Master: master}
	s.Audit = audit.New(db, clk)
	if err := s.publish(ctx, pol); err != nil {
		return nil, err
	}
	s.Guards = policy.NewGuards(db, s.Policy, s.Audit, log)
	s.Versions = policy.NewArchive(db)
	s.Subjects = subject.NewStore(db, clk)
	var err error
	if s.Door, err = door.New(door.Deps{DB: db, Clock: clk, Log: log, Policy: s.Policy.Policy, Guards: s.Guards,
		States: s.Subjects, Audit: s.Audit, Master: master}); err != nil {
		return nil, err
	}
	s.Subjects.SealWith(s.Door)
	s.Jobs = jobs.NewRunner(db, clk, log)
	if s.Outbox, err = mail.NewOutbox(db, clk, s.Jobs, s.Door, mail.Config{SMTPURL: cfg.SMTPURL, From: cfg.MailFrom}, log); err != nil {
		return nil, err
	}
	deps := identity.Deps{
		DB: db, Clock: clk, Log: log, Subjects: s.Subjects, Door: s.Door, Audit: s.Audit,
		Outbox: s.Outbox, Jobs: s.Jobs, Policy: s.Policy, BaseURL: cfg.base(), Getenv: cfg.Getenv,
		Config: identity.Config{Secret: master.Derive("identity throttle v1", 32)},
	}
	if opt.Identity != nil {
		opt.Identity(&deps)
	}
	if s.Identity, err = identity.New(deps); err != nil {
		return nil, err
	}
	if err := s.openConsent(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.openRights(cfg); err != nil {
		return nil, err
	}
	if err := s.openContent(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.openSupport(cfg); err != nil {
		return nil, err
	}
	if err := s.openPayment(cfg); err != nil {
		return nil, err
	}
	if err := s.openDisclosure(cfg); err != nil {
		return nil, err
	}
	if s.OpenID, err = openid.New(ctx, openid.Deps{DB: db, Clock: clk, Log: log, Policy: s.Policy.Policy, Door: s.Door,
		Identity: s.Identity, Consent: s.Consent, Audit: s.Audit, Jobs: s.Jobs, BaseURL: cfg.base(), Getenv: cfg.Getenv,
		TokenSecret: master.Derive("openid access tokens v1", 32), Disclosures: openidDisclosures{s.Disclosure}}); err != nil {
		return nil, err
	}
	// Before anything serves or runs a job, and once every store is
	// built: nothing above reads a personal value.
	if err := s.reseal(ctx); err != nil {
		return nil, err
	}
	s.Metrics = prometheus.NewRegistry()
	s.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := s.openAnalytics(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.openRetention(); err != nil {
		return nil, err
	}
	return s, nil
}

// reseal seals what an earlier release kept in plaintext (addresses,
// acceptances, account fields, session details, subscription pages and
// clicked links, the consent ledger, what people wrote in rights
// requests, the outbox's mail, members' linked events) and empties the
// plaintext columns, then compacts the database: that release changed and
// deleted rows without secure_delete, so older copies of these values lie
// in the file's free space.
func (s *Services) reseal(ctx context.Context) error {
	steps := []struct {
		name string
		run  func(context.Context) (int, error)
	}{
		{"subjects", func(ctx context.Context) (int, error) { return s.Subjects.Reseal(ctx, s.Door) }},
		{"identity", s.Identity.Reseal},
		{"newsletters", s.Newsletters.Reseal},
		{"consent_records", s.Consent.Reseal},
		{"rights_requests", s.Rights.Reseal},
		{"outbox", s.Outbox.Reseal},
		{"activity_member_events", func(ctx context.Context) (int, error) { return activity.Reseal(ctx, s.DB, s.Door) }},
	}
	total, counts := 0, []any{}
	for _, st := range steps {
		n, err := st.run(ctx)
		if err != nil {
			return err
		}
		total += n
		counts = append(counts, st.name, n)
	}
	if total == 0 {
		return nil
	}
	s.Log.Info("sealed values an earlier release kept in plaintext", counts...)
	return s.DB.Compact(ctx)
}

// Close commits the events still queued and writes the denials the door
// still holds. It does not close the database.
func (s *Services) Close(ctx context.Context) error {
	err := s.Activity.Close(ctx)
	if s.tmpBlobs != "" {
		os.RemoveAll(s.tmpBlobs)
	}
	if derr := s.Door.Close(ctx); derr != nil && err == nil {
		err = derr
	}
	return err
}

// publish publishes the policy file as version N+1 when its hash differs
// from the last published one, and audits the publication.
func (s *Services) publish(ctx context.Context, pol *policy.Policy) error {
	v, published, err := policy.Publish(ctx, s.DB, pol, s.Clock.Now())
	if err != nil {
		return err
	}
	s.Policy = policy.Published{Policy: pol, Version: v}
	if published {
		class := "minor"
		if v.Significant {
			class = "significant"
		}
		s.Log.Info("policy published", "version", v.Number, "hash", v.Hash[:12], "classification", class)
		return s.Audit.Record(ctx, s.DB, audit.Event{Actor: "system", Action: "policy.published",
			Detail: map[string]string{"version": fmt.Sprint(v.Number), "hash": v.Hash, "classification": class}})
	}
	return nil
}

func (c Config) base() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return c.DefaultBase
}

// openConsent builds the consent ledger (receipts signed with an Ed25519
// key derived from the master key), newsletters and notices (which mail
// policy changes to newsletter subscribers too); syncs the policy's
// lists; and announces the version in force when it is a significant
// change not yet announced.
func (s *Services) openConsent(ctx context.Context, cfg Config) error {
	signer, err := consent.NewSigner(s.Master.Derive(consent.SigningInfo, 32))
	if err != nil {
		return err
	}
	links, err := consent.NewLinks(s.Master.Derive(consent.LinkInfo, 32), s.Clock)
	if err != nil {
		return err
	}
	base := cfg.base()
	if s.Consent, err = consent.New(consent.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Subjects: s.Subjects, Door: s.Door, Audit: s.Audit,
		Signer: signer, Policy: s.Policy, BaseURL: base}); err != nil {
		return err
	}
	if s.Newsletters, err = newsletter.New(newsletter.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Guards: s.Guards, Door: s.Door,
		Subjects: s.Subjects, Ledger: s.Consent, Links: links, Outbox: s.Outbox, Jobs: s.Jobs, Audit: s.Audit, BaseURL: base}); err != nil {
		return err
	}
	if s.Notices, err = notice.New(notice.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Guards: s.Guards, Door: s.Door,
		Subjects: s.Subjects, Outbox: s.Outbox, Jobs: s.Jobs, Audit: s.Audit, Directory: notice.SubjectDirectory{Accounts: s.Identity},
		Subscribers: s.Newsletters, BaseURL: base}); err != nil {
		return err
	}
	if err := s.Newsletters.SyncLists(ctx); err != nil {
		return err
	}
	if n, err := s.Notices.Reconcile(ctx); err != nil {
		return err
	} else if n != nil {
		s.Log.Info("policy change announced", "notice", n.ID, "version", n.PolicyVersion)
	}
	return nil
}

// openRights builds the rights service over the whole registry. Its
// erasure ledger is also appended to a file in the data directory, which
// `steward rights reapply` reads after a backup is restored; keep that
// file out of the database's backups.
func (s *Services) openRights(cfg Config) error {
	reg, err := schema.Registry()
	if err != nil {
		return err
	}
	rc := rights.Config{}
	if cfg.DataDir != "" {
		rc.LedgerPath = filepath.Join(cfg.DataDir, "erasure-ledger.jsonl")
	}
	s.Rights, err = rights.New(rights.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy,
		Registry: reg, Subjects: s.Subjects, Door: s.Door, Audit: s.Audit, Outbox: s.Outbox, Jobs: s.Jobs,
		Accounts: rightsAccounts{s.Identity}, BaseURL: cfg.BaseURL, Config: rc})
	return err
}

// openContent builds the blob store and the content service, and hands the
// content tables, their files included, to the rights engine.
func (s *Services) openContent(ctx context.Context, cfg Config) error {
	dir := cfg.DataDir
	if dir == "" && cfg.BlobURL == "" {
		tmp, err := os.MkdirTemp("", "steward-blobs-")
		if err != nil {
			return err
		}
		s.Log.Warn("no data directory: uploads are kept in a temporary directory", "dir", tmp)
		s.tmpBlobs, dir = tmp, tmp
	}
	var err error
	if s.Blobs, err = blob.Open(ctx, blob.Config{URL: cfg.BlobURL, DataDir: dir, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey}); err != nil {
		return err
	}
	if s.Content, err = content.New(content.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Door: s.Door, Blobs: s.Blobs,
		Names: s.Identity, Audit: s.Audit, SpoolDir: dir, Limits: cfg.Uploads,
		Subjects: s.Subjects, Outbox: s.Outbox, Jobs: s.Jobs, BaseURL: cfg.base(), LinkKey: s.Master.Derive("content guest link v1", 32)}); err != nil {
		return err
	}
	h := contentRights{s.Content.Holder()}
	for _, t := range content.Tables() {
		if t.Personal() {
			s.Rights.Register(t.Name, h)
		}
	}
	s.Rights.AddFiles(h)
	return nil
}

// openSupport builds the support desk on the blob store, and hands its
// tables and files to the rights engine.
func (s *Services) openSupport(cfg Config) error {
	dir := cfg.DataDir
	if dir == "" {
		dir = s.tmpBlobs
	}
	var err error
	if s.Support, err = support.New(support.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Door: s.Door, Blobs: s.Blobs,
		Subjects: s.Subjects, Names: s.Identity, Audit: s.Audit, Outbox: s.Outbox, Jobs: s.Jobs, BaseURL: cfg.base(),
		LinkKey: s.Master.Derive("support link v1", 32), Address: cfg.SupportAddress, SpoolDir: dir, Limits: cfg.Support}); err != nil {
		return err
	}
	h := supportRights{s.Support.Holder()}
	for _, t := range support.Tables() {
		if t.Personal() {
			s.Rights.Register(t.Name, h)
		}
	}
	s.Rights.AddFiles(h)
	return s.Rights.CheckBlobHolders()
}

// openPayment builds the payment service. Without a configured secret it
// still runs (members' and staff's reads work) but takes no delivery: its
// secret is then one nobody holds.
func (s *Services) openPayment(cfg Config) error {
	secret := cfg.PaymentSecret
	if secret == "" {
		secret = fmt.Sprintf("%x", s.Master.Derive("payment webhook unset", 32))
		if s.Policy.Policy.CategoryOfField(payment.FieldToken) != "" {
			s.Log.Warn("no payment webhook secret (STEWARD_PAYMENT_WEBHOOK_SECRET): the processor's events are refused")
		}
	}
	var err error
	s.Payment, err = payment.New(payment.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Door: s.Door, Audit: s.Audit,
		Subjects: s.Subjects, Secret: secret, Jobs: s.Jobs, Verified: func(ctx context.Context, id string) (bool, error) {
			a, err := s.Identity.AccountOf(ctx, id)
			if fault.Is(err, fault.NotFound) {
				return false, nil
			}
			return a.EmailVerified, err
		}})
	return err
}

// supportRights hands the support tables and files to the rights engine.
type supportRights struct{ h *support.Holder }

func (c supportRights) scope(sc rights.Scope) support.Scope {
	return support.Scope{Kind: sc.Kind, Fields: sc.Fields, Categories: sc.Categories, Items: sc.Items}
}

func (c supportRights) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc rights.Scope) (rights.TableOutcome, error) {
	o, err := c.h.Erase(ctx, tx, t, ids, c.scope(sc))
	return rights.TableOutcome{Dataset: o.Dataset, Erased: o.Erased}, err
}

func (c supportRights) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc rights.Scope) (int, error) {
	return c.h.Left(ctx, q, t, ids, c.scope(sc))
}

func (c supportRights) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	return c.h.Export(ctx, q, t, ids)
}

func (c supportRights) Files(ctx context.Context, subjectID string) ([]rights.File, error) {
	fs, err := c.h.Files(ctx, subjectID)
	out := make([]rights.File, len(fs))
	for i, f := range fs {
		out[i] = rights.File{Name: f.Name, ModTime: f.ModTime, Open: f.Open}
	}
	return out, err
}

// contentRights hands the content tables and files to the rights engine
// (content knows nothing of rights: the app translates).
type contentRights struct{ h *content.Holder }

func contentScope(sc rights.Scope) content.Scope {
	return content.Scope{Kind: sc.Kind, Fields: sc.Fields, Categories: sc.Categories, Items: sc.Items, UnderAge: sc.UnderAge}
}

func (c contentRights) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc rights.Scope) (rights.TableOutcome, error) {
	o, err := c.h.Erase(ctx, tx, t, ids, contentScope(sc))
	return rights.TableOutcome{Dataset: o.Dataset, Erased: o.Erased, Kept: o.Kept, Why: o.Why, Explanation: o.Explanation}, err
}

func (c contentRights) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc rights.Scope) (int, error) {
	return c.h.Left(ctx, q, t, ids, contentScope(sc))
}

func (c contentRights) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	return c.h.Export(ctx, q, t, ids)
}

func (c contentRights) Files(ctx context.Context, subjectID string) ([]rights.File, error) {
	fs, err := c.h.Files(ctx, subjectID)
	out := make([]rights.File, len(fs))
	for i, f := range fs {
		out[i] = rights.File{Name: f.Name, ModTime: f.ModTime, Open: f.Open}
	}
	return out, err
}

// rightsAccounts tells the rights engine what it needs to know about
// accounts, from identity.
type rightsAccounts struct{ identity *identity.Service }

func (r rightsAccounts) AccountOf(ctx context.Context, subjectID string) (rights.Account, error) {
	a, err := r.identity.AccountOf(ctx, subjectID)
	if err != nil {
		return rights.Account{}, err
	}
	return rights.Account{Staff: a.Staff(), Unverified: !a.EmailVerified}, nil
}

// openAnalytics builds the collector (configured from the policy: sites,
// declared fields, location granularity, account linking, retention; an
// operator MMDB for region and city when given), its jobs (salt
// destruction, retention), the merge hook for linked events, its metrics,
// and the report service with the policy's trends settings.
func (s *Services) openAnalytics(ctx context.Context, cfg Config) error {
	acfg, err := activity.FromPolicy(s.Policy)
	if err != nil {
		return err
	}
	if cfg.ServesDemo {
		acfg.Sites = withOwnOrigin(acfg.Sites, DemoSite, cfg.BaseURL)
	}
	var geo *activity.Geo
	if cfg.GeoIPPath != "" {
		if geo, err = activity.OpenGeo(cfg.GeoIPPath); err != nil {
			return err
		}
		s.Log.Info("region and city from an operator MMDB", "built", geo.BuildTime().Format("2006-01-02"))
	}
	s.Activity, err = activity.New(activity.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Config: acfg, Geo: geo,
		Members: activity.NewPolicyGate(s.DB, s.Door)})
	if err != nil {
		return err
	}
	s.Activity.RegisterJobs(s.Jobs)
	s.Subjects.OnMerge(func(ctx context.Context, tx *sql.Tx, from, into string) error {
		return activity.MergeMember(ctx, tx, from, into)
	})
	if s.Analytics, err = analytics.New(s.DB, s.Clock, s.Activity.Sites(), analytics.TrendsFromPolicy(s.Policy.Policy)); err != nil {
		return err
	}
	stats := func(f func(activity.Stats) int64) func() float64 {
		return func() float64 { return float64(f(s.Activity.Stats())) }
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_events_committed_total",
			Help: "Events durably committed by the collector."}, stats(func(st activity.Stats) int64 { return st.Events })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_batches_total",
			Help: "Group-commit transactions."}, stats(func(st activity.Stats) int64 { return st.Batches })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_batch_failures_total",
			Help: "Group-commit transactions that failed."}, stats(func(st activity.Stats) int64 { return st.Failures })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_commit_seconds_total",
			Help: "Time spent committing group-commit transactions."}, func() float64 { return s.Activity.Stats().CommitTime.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "steward_activity_seen_keys",
			Help: "Unique-visitor keys of the live days held in memory."}, stats(func(st activity.Stats) int64 { return st.SeenKeys })),
	} {
		if err := s.Metrics.Register(c); err != nil {
			return fmt.Errorf("services: register activity metrics: %w", err)
		}
	}
	s.Activity.Start(ctx)
	return nil
}

// DemoSite is the site id of the demo page (examples/site).
const DemoSite = "demo"

// withOwnOrigin adds Steward's own origin (and its loopback twin:
// 127.0.0.1 and localhost name one machine) to the allowed origins of
// site id, so the demo page Steward serves itself can send events
// whatever address it listens on; the example policies name port 8080.
func withOwnOrigin(sites []activity.Site, id, baseURL string) []activity.Site {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return sites
	}
	own := []string{strings.ToLower(u.Scheme + "://" + u.Host)}
	port := ""
	if p := u.Port(); p != "" {
		port = ":" + p
	}
	switch u.Hostname() {
	case "127.0.0.1":
		own = append(own, u.Scheme+"://localhost"+port)
	case "localhost":
		own = append(own, u.Scheme+"://127.0.0.1"+port)
	}
	out := slices.Clone(sites)
	for i := range out {
		if out[i].ID != id {
			continue
		}
		origins := slices.Clone(out[i].Origins)
		for _, o := range own {
			if !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
		out[i].Origins = origins
	}
	return out
}
