// Package content holds what members post: comments and posts, with
// photos and videos attached, public or private, under moderation.
//
// Every text and file is personal data of its author, sealed by the door
// under a key of its own item (wrapped by the author's key for the item's
// category), so erasing one item, or all of the author's content, shreds
// every copy: database pages, blob storage, backups. Uploads have their
// location and device metadata removed before they are sealed (package
// media), and files reach blob storage only sealed. A public view of a
// thread reads its authors through the door's batch form, for the purpose
// the policy gives to running the service, and shows of each author the
// display name and nothing else; an author whose processing is restricted
// is withheld from public views. The rights engine erases and exports the
// package's tables through the holder this package registers, which also
// removes and lists the blobs.
package content

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are this package's schema changes (module "content").
func Migrations() store.Migrations { return store.Embedded("content", migrationFS) }

// Kinds of items, which are also the policy fields their text is.
const (
	KindComment = "comment"
	KindPost    = "post"
)

// Kinds of files, which are also the policy fields they are.
const (
	FilePhoto = "photo"
	FileVideo = "video"
	// FilePicture is a member's profile picture, shown beside what they
	// post; the policy files it with their identity or profile.
	FilePicture = "picture"
)

// Visibility of an item.
const (
	Public  = "public"
	Private = "private"
)

// Status of an item under moderation.
const (
	StatusPending = "pending" // a guest's comment waiting for its mailed link
	StatusVisible = "visible"
	StatusHidden  = "hidden"
	StatusRemoved = "removed"
)

// Reasons for a report or a moderation action.
var Reasons = []string{"spam", "abuse", "illegal", "privacy", "other"}

// Purposes the package names.
const (
	// PurposeService is the purpose of publishing what members post.
	PurposeService = "provide-service"
	// PurposeModeration is the purpose of moderators' screens.
	PurposeModeration = "moderation"
)

// Names reads the display names of many subjects at once, each through the
// batch's view of them (identity.Service).
type Names interface {
	DisplayNames(ctx context.Context, b *door.Batch, ids []string) (map[string]string, error)
}

// Recorder appends audit events (audit.Log).
type Recorder interface {
	Record(ctx context.Context, q store.Q, e audit.Event) error
}

// Deps are the service's dependencies. All but Log are required.
type Deps struct {
	DB     *store.DB
	Clock  clock.Clock
	Log    *slog.Logger
	Policy policy.Published
	Door   *door.Door
	Blobs  blob.Store
	Names  Names
	Audit  Recorder
	// Limits bound uploads (defaults when zero).
	Limits Limits
	// Subjects finds or makes the email-only subject of a guest's comment,
	// Outbox mails the link that publishes it, from BaseURL, signed with
	// LinkKey.
	Subjects *subject.Store
	Outbox   *mail.Outbox
	BaseURL  string
	LinkKey  []byte
	// Jobs runs the hourly prune of unconfirmed guests' comments.
	Jobs *jobs.Runner
	// SpoolDir holds uploads, encrypted, while they are checked (the
	// system's temporary directory when empty).
	SpoolDir string
}

// Limits bound what one upload may be.
type Limits struct {
	// MaxPhoto and MaxVideo are the largest files accepted, in bytes.
	MaxPhoto, MaxVideo int64
	// MaxText is the longest text of an item, in bytes.
	MaxText int
}

func (l Limits) withDefaults() Limits {
	if l.MaxPhoto <= 0 {
		l.MaxPhoto = 25 << 20
	}
	if l.MaxVideo <= 0 {
		l.MaxVideo = 2 << 30
	}
	if l.MaxText <= 0 {
		l.MaxText = 20000
	}
	return l
}

// Service runs content. It is safe for concurrent use.
type Service struct {
	d   Deps
	lim Limits
}

// New returns the service.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Clock == nil || d.Policy.Policy == nil || d.Door == nil || d.Blobs == nil || d.Names == nil || d.Audit == nil ||
		d.Subjects == nil || d.Outbox == nil || d.Jobs == nil || len(d.LinkKey) < 32 {
		return nil, errors.New("content: DB, Clock, Policy, Door, Blobs, Names, Audit, Subjects, Outbox, Jobs and a 32-byte LinkKey are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{d: d, lim: d.Limits.withDefaults()}
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		n, err := s.PruneUnconfirmed(ctx)
		if err == nil && n > 0 {
			s.d.Log.Info("content: deleted guests' comments never confirmed", "comments", n)
		}
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	d.Subjects.OnMerge(s.merge)
	return s, nil
}

// WithLimits is the service with other upload limits (a benchmark's).
func (s *Service) WithLimits(l Limits) *Service {
	c := *s
	c.lim = l.withDefaults()
	return &c
}

// Limits are the upload limits in force.
func (s *Service) Limits() Limits { return s.lim }

// Tables declares the package's tables to the personal-data registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "content_items", Owner: "content", Origin: registry.Provided, Dataset: "posts",
			SubjectColumn: "subject_id", Source: "subject", PolicyVersionColumn: "policy_version",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "kind"}, {Name: "site"}, {Name: "thread"},
				{Name: "parent_id"}, {Name: "body_sealed", Field: KindComment, Sensitive: true},
				{Name: "author_name_sealed", Field: KindComment, Sensitive: true}, {Name: "visibility"}, {Name: "status"},
				{Name: "policy_version"}, {Name: "created_at"}, {Name: "edited_at"}},
			Description: "Comments and posts a member wrote, public or private. Each text is sealed under a key of its own item, " +
				"so erasing one item shreds every copy of it; the thread is the site's own page.",
		},
		{
			Name: "content_files", Owner: "content", Origin: registry.Provided, Dataset: "uploads",
			SubjectColumn: "subject_id", Source: "subject",
			Columns: []registry.Column{{Name: "id"}, {Name: "item_id"}, {Name: "subject_id"}, {Name: "kind"},
				{Name: "name_sealed", Field: FilePhoto, Sensitive: true}, {Name: "mime"}, {Name: "size"}, {Name: "width"}, {Name: "height"},
				{Name: "blob", Blob: true}, {Name: "thumb", Blob: true}, {Name: "created_at"}},
			Description: "Photos and videos a member uploaded. The file is in blob storage, stripped of location and device " +
				"metadata and sealed under its own item key; the row keeps its name (sealed), type, size and blob keys.",
		},
		{
			Name: "content_settings", Owner: "content", Origin: registry.Provided, Dataset: "content_settings",
			SubjectColumn: "subject_id", Source: "subject",
			Columns:     []registry.Column{{Name: "subject_id"}, {Name: "default_visibility"}, {Name: "updated_at"}},
			Description: "Who sees what a member posts when they do not say (public or private).",
		},
		{
			Name: "content_reports", Owner: "content", Origin: registry.System,
			Columns:     []registry.Column{{Name: "id"}, {Name: "item_id"}, {Name: "reason"}, {Name: "created_at"}, {Name: "resolved_at"}},
			Description: "Reports of items to moderators: the item and a fixed reason. Nothing of the reporter is kept.",
		},
		{
			Name: "content_actions", Owner: "content", Origin: registry.System, Dataset: "moderation",
			SubjectColumn: "subject_id", Source: "staff",
			Columns: []registry.Column{{Name: "id"}, {Name: "item_id"}, {Name: "subject_id"}, {Name: "staff_id"}, {Name: "action"},
				{Name: "reason"}, {Name: "note_sealed", Field: KindComment, Sensitive: true}, {Name: "created_at"}},
			Description: "Moderators' decisions on a member's items (hide, restore, remove), with the reason and the note the " +
				"member is told, sealed under the item's key.",
		},
	}
}

// merge re-points an email-only subject's items, files and decisions to
// the member it is merged into (a guest who later signs up): they stay
// sealed under the keys they had, which the door still finds.
func (s *Service) merge(ctx context.Context, tx *sql.Tx, from, into string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM content_settings WHERE subject_id = $1 AND EXISTS (SELECT 1 FROM content_settings WHERE subject_id = $2)`, from, into); err != nil {
		return fmt.Errorf("content: merge: %w", err)
	}
	return repoint(ctx, tx, from, into)
}

var repoint = subject.Repoint("content", "content_items", "content_files", "content_actions", "content_settings")

// now is the service's clock, truncated as the stores keep it.
func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }
