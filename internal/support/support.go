// Package support is the support desk: requests people open on the web or
// by mail, the exchanges of each in both directions with their
// attachments, and the recordings of calls, with the caller's notice of
// recording.
//
// Everything a request holds is personal data of its requester, sealed by
// the door under a key of the request's own (wrapped by the requester's
// key for the category the policy gives support records), so erasing one
// request, or all of a person's, shreds every copy. Support staff read a
// request for the purpose their role holds that uses support records;
// a quality reviewer reads the exchanges and recordings for quality and
// training, and nothing else of the person: the requester's name and
// address are read separately, for a purpose the reviewer does not hold.
//
// Mail reaches the desk through an optional SMTP listener (package mail).
// A reply is threaded by the signed reply address of its request, and only
// when it comes from the requester's own address; a new request by mail,
// or on the web from someone not signed in, waits in quarantine — sealed
// under a key of its own — until its sender follows the link mailed to the
// address, which proves it is theirs. What nobody confirms is deleted
// after a stated time.
package support

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/netlimit"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are this package's schema changes (module "support").
func Migrations() store.Migrations { return store.Embedded("support", migrationFS) }

// Policy fields the package stores.
const (
	FieldRequest   = "support_request"
	FieldMessage   = "support_message"
	FieldRecording = "call_recording"
)

// Channels a request or an exchange comes by.
const (
	ChannelWeb   = "web"
	ChannelMail  = "mail"
	ChannelPhone = "phone"
)

// Status of a request: open (staff owe an answer), answered (the
// requester has the last word), closed.
const (
	StatusOpen     = "open"
	StatusAnswered = "answered"
	StatusClosed   = "closed"
)

// Kinds of files.
const (
	FileAttachment = "attachment"
	FileRecording  = "recording"
)

// JobPrune deletes quarantined mail and requests nobody confirmed in time.
const JobPrune = "support.prune"

// Recorder appends audit events (audit.Log).
type Recorder interface {
	Record(ctx context.Context, q store.Q, e audit.Event) error
}

// Names reads display names (identity.Service), each through the
// batch's view of its subject.
type Names interface {
	DisplayNames(ctx context.Context, b *door.Batch, ids []string) (map[string]string, error)
}

// Deps are the service's dependencies. All but Log and the limits are
// required.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published
	Door     *door.Door
	Blobs    blob.Store
	Subjects *subject.Store
	Names    Names
	Audit    Recorder
	Outbox   *mail.Outbox
	Jobs     *jobs.Runner
	// BaseURL is where links in mail point; LinkKey signs them and the
	// reply addresses (32 bytes).
	BaseURL string
	LinkKey []byte
	// Address is the support address mail is written to ("support@…");
	// replies go to its "+token" form. Empty: no mail in.
	Address string
	// SpoolDir holds uploads and mail, encrypted, while they are checked.
	SpoolDir string
	Limits   Limits
}

// Limits bound what one request may hold.
type Limits struct {
	MaxText       int   // bytes of one exchange
	MaxTitle      int   // bytes of a title
	MaxFile       int64 // bytes of one attachment
	MaxRecording  int64 // bytes of one call recording
	MaxFiles      int   // files of one exchange
	QuarantineFor time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxText <= 0 {
		l.MaxText = 50000
	}
	if l.MaxTitle <= 0 {
		l.MaxTitle = 200
	}
	if l.MaxFile <= 0 {
		l.MaxFile = 25 << 20
	}
	if l.MaxRecording <= 0 {
		l.MaxRecording = 200 << 20
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 10
	}
	if l.QuarantineFor <= 0 {
		l.QuarantineFor = 7 * 24 * time.Hour
	}
	return l
}

// Service runs the support desk. It is safe for concurrent use.
type Service struct {
	d   Deps
	lim Limits
	// purpose is what the desk itself handles requests for: the purpose of
	// the policy's support staff that uses support records.
	purpose string
	// submits limits the public form per client network.
	submits *netlimit.Limiter
}

// New returns the service and registers its job and merge hook.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Clock == nil || d.Policy.Policy == nil || d.Door == nil || d.Blobs == nil || d.Subjects == nil || d.Names == nil ||
		d.Audit == nil || d.Outbox == nil || d.Jobs == nil || len(d.LinkKey) < 32 {
		return nil, errors.New("support: DB, Clock, Policy, Door, Blobs, Subjects, Names, Audit, Outbox, Jobs and a 32-byte LinkKey are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{d: d, lim: d.Limits.withDefaults(), submits: netlimit.New(time.Minute, 5)}
	s.purpose = s.deskPurpose()
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		n, err := s.Prune(ctx)
		if err == nil && n > 0 {
			s.d.Log.Info("support: deleted held mail and requests nobody confirmed", "held", n)
		}
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	// An email-only requester's records follow them into the member they
	// become.
	d.Subjects.OnMerge(subject.Repoint("support", "support_requests", "support_messages", "support_files"))
	return s, nil
}

// Enabled reports whether the policy declares support records at all.
func (s *Service) Enabled() bool { return s.category(FieldMessage) != "" && s.purpose != "" }

// deskPurpose is the purpose the policy's support role holds that uses
// support records ("" when there is none: the desk is off).
func (s *Service) deskPurpose() string {
	cat := s.category(FieldMessage)
	if r := s.d.Policy.Policy.StaffRole("support"); r != nil && cat != "" {
		for _, id := range r.Purposes {
			if p := s.d.Policy.Policy.Purpose(id); p != nil && !p.Builtin && slices.Contains(p.Uses, cat) {
				return id
			}
		}
	}
	return ""
}

// category is the category of a field under the policy ("" when it
// declares none).
func (s *Service) category(field string) string { return s.d.Policy.Policy.CategoryOfField(field) }

// needCategory is category refusing a field the policy does not declare.
func (s *Service) needCategory(field string) (string, error) {
	if c := s.category(field); c != "" {
		return c, nil
	}
	switch field {
	case FieldRecording:
		return "", fault.New(fault.Invalid, "this site does not keep call recordings (the privacy policy declares none)")
	}
	return "", fault.New(fault.Invalid, "this site keeps no support records (the privacy policy declares none)")
}

// Staff is a staff member acting in a role.
type Staff struct{ ID, Role string }

// staffUse is the use of a staff screen that reads support records: the
// first purpose the role holds that uses them. A role holding none is
// refused, and the refusal audited, by the door.
func (s *Service) staffUse(st Staff) door.Use {
	cat := s.category(FieldMessage)
	if r := s.d.Policy.Policy.StaffRole(st.Role); r != nil {
		for _, id := range r.Purposes {
			if p := s.d.Policy.Policy.Purpose(id); p != nil && !p.Builtin && slices.Contains(p.Uses, cat) {
				return door.Staff(st.ID, st.Role, id)
			}
		}
	}
	return door.Staff(st.ID, st.Role, s.purpose)
}

// requesterUse is what the desk seals a requester's own words for.
func (s *Service) requesterUse() door.Use {
	return door.Use{Purpose: s.purpose, Actor: door.ActorSubject}
}

// Tables declares the package's tables to the personal-data registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "support_requests", Owner: "support", Origin: registry.Provided, Dataset: "support_requests",
			Dated:         registry.Dating{Column: "updated_at"},
			SubjectColumn: "subject_id", Source: "subject", PolicyVersionColumn: "policy_version",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "title_sealed", Field: FieldRequest, Sensitive: true},
				{Name: "channel"}, {Name: "status"}, {Name: "assignee"}, {Name: "policy_version"}, {Name: "created_at"},
				{Name: "updated_at"}, {Name: "closed_at"}},
			Description: "Support requests a person opened, on the web, by mail or by phone: the title (sealed under the " +
				"request's own key), status and the staff member it is assigned to.",
		},
		{
			Name: "support_messages", Owner: "support", Origin: registry.Provided, Dataset: "support_messages",
			Dated:         registry.Dating{With: "support_requests", WithKey: "request_id"},
			SubjectColumn: "subject_id", Source: "subject",
			Columns: []registry.Column{{Name: "id"}, {Name: "request_id"}, {Name: "subject_id"}, {Name: "direction"}, {Name: "channel"},
				{Name: "staff_id"}, {Name: "body_sealed", Field: FieldMessage, Sensitive: true}, {Name: "spf"}, {Name: "dkim"},
				{Name: "dmarc"}, {Name: "created_at"}},
			Description: "The exchanges of each support request, what the person wrote and what staff answered, sealed under " +
				"the request's key, with the sender checks a mail relay reported.",
		},
		{
			Name: "support_files", Owner: "support", Origin: registry.Provided, Dataset: "support_files",
			Dated:         registry.Dating{With: "support_requests", WithKey: "request_id"},
			SubjectColumn: "subject_id", Source: "subject",
			Columns: []registry.Column{{Name: "id"}, {Name: "request_id"}, {Name: "message_id"}, {Name: "subject_id"}, {Name: "kind"},
				{Name: "name_sealed", Field: FieldMessage, Sensitive: true}, {Name: "mime"}, {Name: "size"},
				{Name: "blob", Blob: true}, {Name: "notice_given_at"}, {Name: "created_at"}},
			Description: "Attachments of support exchanges and recordings of calls (with when the caller was told the call " +
				"is recorded). The file is in blob storage, sealed under the request's key.",
		},
		{
			Name: "support_quarantine", Owner: "support", Origin: registry.System,
			Columns: []registry.Column{{Name: "id"}, {Name: "reason"}, {Name: "sender_index", Hashed: true},
				{Name: "draft_sealed"}, {Name: "blob"}, {Name: "size"}, {Name: "received_at"}, {Name: "expires_at"}, {Name: "mailed_at"}},
			Description: "Mail and requests held until their sender proves the address, or that could not be threaded: each " +
				"sealed under a key of its own, destroyed when it is released or its time is up. The sender is known only by " +
				"the blind index of the address.",
		},
	}
}

// now is the service's clock, truncated as the stores keep it.
func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) audit(ctx context.Context, q store.Q, e audit.Event) error {
	if err := s.d.Audit.Record(ctx, q, e); err != nil {
		return fmt.Errorf("support: audit: %w", err)
	}
	return nil
}
