package rights

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/store"
)

// Requester is a signed-in member filing a request or reading their data.
type Requester struct {
	SubjectID string
	SessionID string
	// Reauthenticate proves the member is present for what hands over or
	// destroys everything (access, portability, erasure): the password
	// they gave now, or a login within the privileged window. Without it,
	// or when it fails, the request is refused and the refusal audited.
	Reauthenticate func(ctx context.Context) error
}

// Reauthenticated is the Reauthenticate of a member who has already
// proved their presence.
func Reauthenticated(context.Context) error { return nil }

// reauthenticate runs who's proof of presence, auditing a failure.
func (s *Service) reauthenticate(ctx context.Context, who Requester, what string) error {
	var err error = fault.New(fault.ReauthNeeded, "confirm your password to ask for this")
	if who.Reauthenticate != nil {
		err = who.Reauthenticate(ctx)
	}
	if err == nil {
		return nil
	}
	if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: who.SubjectID, Action: "rights.request_denied", Subject: who.SubjectID,
		Detail: map[string]string{"what": what, "why": "reauthentication"}}); aerr != nil {
		return aerr
	}
	return err
}

// needsReauth lists the types a member must re-authenticate for: they
// hand over or destroy everything.
func needsReauth(t Type) bool { return t == Access || t == Portability || t == Erasure }

// File records a signed-in member's request. Identity is proved by the
// session (and, for access, portability and erasure, by re-authentication),
// so the request starts verified; what takes effect at once (a
// restriction, an objection to direct marketing) does so before File
// returns.
func (s *Service) File(ctx context.Context, who Requester, f Filing) (Request, error) {
	return s.file(ctx, who, who.SubjectID, f)
}

// FileFor records a request a primary account holder files for one of
// its sub-accounts, which authorised it (the caller checks the grant: see
// identity.Service.MayRequestFor). The request is the sub-account's own —
// its subject, its mails, its download — and names who filed it; the
// primary proves their presence as for their own.
func (s *Service) FileFor(ctx context.Context, who Requester, subjectID string, f Filing) (Request, error) {
	if subjectID == who.SubjectID {
		return s.File(ctx, who, f)
	}
	return s.file(ctx, who, subjectID, f)
}

func (s *Service) file(ctx context.Context, who Requester, subjectID string, f Filing) (Request, error) {
	if needsReauth(f.Type) {
		if err := s.reauthenticate(ctx, who, string(f.Type)); err != nil {
			return Request{}, err
		}
	}
	acct, err := s.accounts.AccountOf(ctx, subjectID)
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		return Request{}, err
	}
	hasAccount := err == nil
	if hasAccount && acct.Unverified {
		if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: who.SubjectID, Action: "rights.request_denied", Subject: subjectID,
			Detail: map[string]string{"what": string(f.Type), "why": "email-unverified"}}); aerr != nil {
			return Request{}, aerr
		}
		return Request{}, fault.New(fault.EmailUnverified, "confirm your email address first: the answer to a request goes there (the link is in the mail we sent when you signed up; you can ask for a new one)")
	}
	if err := s.validate(ctx, &f, ChannelAccount, hasAccount); err != nil {
		return Request{}, err
	}
	if f.Type == Erasure && f.Scope == string(policy.ScopeItem) {
		if err := s.ownsItems(ctx, s.db, subjectID, f.Items); err != nil {
			if fault.CodeOf(err) == fault.NotFound {
				_ = s.audit.Record(ctx, s.db, audit.Event{Actor: who.SubjectID, Action: "rights.request_denied", Subject: subjectID,
					Detail: map[string]string{"why": "item-not-yours-or-unknown"}})
			}
			return Request{}, err
		}
	}
	now := s.clock.Now()
	r := s.newRequest(subjectID, f, ChannelAccount, who.SubjectID, now)
	if subjectID == who.SubjectID {
		// The session that filed may download the answer; a primary's
		// session never downloads a sub-account's.
		r.SessionID = who.SessionID
	}
	r.Status, r.VerifiedAt = StatusVerified, now
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insert(ctx, tx, r); err != nil {
			return err
		}
		if err := s.record(ctx, tx, who.SubjectID, "request_received", r, map[string]string{"channel": r.Channel}); err != nil {
			return err
		}
		how := "session"
		if subjectID != who.SubjectID {
			how = "primary-account-grant"
		}
		if err := s.record(ctx, tx, who.SubjectID, "request_verified", r, map[string]string{"how": how}); err != nil {
			return err
		}
		return s.start(ctx, tx, &r, acct.Staff)
	})
	if err != nil {
		return Request{}, err
	}
	s.jobs.Wake()
	return s.load(ctx, s.db, r.ID)
}

func (s *Service) newRequest(subjectID string, f Filing, channel, filedBy string, now time.Time) Request {
	return Request{
		ID: store.NewID("rq_"), SubjectID: subjectID, Type: f.Type, Scope: f.Scope,
		Params:      Params{Purposes: f.Purposes, Fields: f.Fields, Categories: f.Categories, Items: f.Items, Restrict: f.Restrict, Lift: f.Lift},
		Corrections: f.Corrections, Reason: f.Reason, Channel: channel, FiledBy: filedBy,
		ReceivedAt: now, DueAt: clock.AddMonths(now, 1),
	}
}

// start carries out what a verified request does at once and queues the
// rest: exports and erasures run as jobs, reviews wait for staff.
func (s *Service) start(ctx context.Context, tx *sql.Tx, r *Request, staffAccount bool) error {
	actor := r.SubjectID
	switch r.Type {
	case Access, Portability:
		if err := s.mailRequest(ctx, tx, *r, "received"); err != nil {
			return err
		}
		return s.enqueueProcess(ctx, tx, r.ID)
	case Erasure:
		if staffAccount && !r.Params.UnderAge {
			// A staff account reaches everyone's data: closing it is for
			// another staff member to approve.
			if err := s.update(ctx, tx, r.ID, map[string]any{"needs_review": true}); err != nil {
				return err
			}
			r.NeedsReview = true
			return s.mailRequest(ctx, tx, *r, "received")
		}
		if err := s.mailRequest(ctx, tx, *r, "received"); err != nil {
			return err
		}
		return s.enqueueProcess(ctx, tx, r.ID)
	case Restriction:
		var res map[string]any
		if r.Params.Lift {
			if err := s.subjects.SetRestriction(ctx, tx, r.SubjectID, false, nil); err != nil {
				return err
			}
			res = map[string]any{"restriction": "lifted at your request"}
		} else {
			if err := s.subjects.SetRestriction(ctx, tx, r.SubjectID, true, r.Params.Categories); err != nil {
				return err
			}
			cats := r.Params.Categories
			if len(cats) == 0 {
				cats = []string{"all"}
			}
			res = map[string]any{"restriction": "in force", "categories": cats,
				"while_restricted": []string{policy.Storage, policy.LegalClaims, policy.Security, policy.SubjectRequest}}
		}
		return s.complete(ctx, tx, r, actor, res)
	case Objection:
		var marketing, others []string
		suppress := false
		for _, p := range r.Params.Purposes {
			if s.isDirectMarketing(p) {
				marketing = append(marketing, p)
				suppress = true
			} else {
				others = append(others, p)
			}
			// Every objection takes effect at once: processing for the
			// purpose stops while staff weigh any compelling grounds.
			if err := s.subjects.SetObjection(ctx, tx, r.SubjectID, p, true); err != nil {
				return err
			}
		}
		if suppress {
			if err := s.subjects.SetMarketingSuppressed(ctx, tx, r.SubjectID, true); err != nil {
				return err
			}
		}
		if len(others) == 0 {
			return s.complete(ctx, tx, r, actor, map[string]any{"objection": "in force", "purposes": marketing,
				"direct_marketing": "stopped at once; this objection cannot be refused (Art. 21(3))"})
		}
		if err := s.update(ctx, tx, r.ID, map[string]any{"needs_review": true,
			"result": mustJSON(map[string]any{"in_force_now": r.Params.Purposes, "under_review": others})}); err != nil {
			return err
		}
		r.NeedsReview = true
		return s.mailRequest(ctx, tx, *r, "received")
	case Rectification:
		if r.Params.Restrict {
			if err := s.restrictFor(ctx, tx, r.SubjectID, r.Params.Fields); err != nil {
				return err
			}
		}
		if err := s.update(ctx, tx, r.ID, map[string]any{"needs_review": true}); err != nil {
			return err
		}
		r.NeedsReview = true
		return s.mailRequest(ctx, tx, *r, "received")
	}
	return nil
}

// restrictFor restricts processing of the categories holding fields while
// a correction is assessed, widening a restriction already in force.
func (s *Service) restrictFor(ctx context.Context, tx *sql.Tx, subjectID string, fields []string) error {
	st, err := s.subjects.State(ctx, tx, subjectID)
	if err != nil {
		return err
	}
	if st.Restricted && len(st.RestrictedCategories) == 0 {
		return nil // everything is restricted already
	}
	seen := map[string]bool{}
	var cats []string
	if st.Restricted {
		for _, c := range st.RestrictedCategories {
			seen[c] = true
			cats = append(cats, c)
		}
	}
	for _, f := range fields {
		if c := s.pol.CategoryOfField(f); c != "" && !seen[c] {
			seen[c] = true
			cats = append(cats, c)
		}
	}
	sort.Strings(cats)
	return s.subjects.SetRestriction(ctx, tx, subjectID, true, cats)
}

func (s *Service) enqueueProcess(ctx context.Context, q store.Q, id string) error {
	_, err := s.jobs.Enqueue(ctx, q, jobProcess, map[string]string{"request": id}, jobs.Options{Key: jobProcess + ":" + id, MaxAttempts: 20})
	return err
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and slices reach here
	}
	return string(b)
}

// complete finishes a request with its result and tells the subject.
func (s *Service) complete(ctx context.Context, tx *sql.Tx, r *Request, actor string, result any) error {
	result, err := s.propagate(ctx, tx, r, result)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if err := s.update(ctx, tx, r.ID, map[string]any{"status": string(StatusCompleted), "completed_at": now, "progress": 100,
		"result": mustJSON(result), "needs_review": false}); err != nil {
		return err
	}
	r.Status, r.CompletedAt, r.Result = StatusCompleted, now, json.RawMessage(mustJSON(result))
	if err := s.record(ctx, tx, actor, "request_completed", *r, nil); err != nil {
		return err
	}
	return s.mailRequest(ctx, tx, *r, "completed")
}

// refuse ends a request with a reason the subject is told.
func (s *Service) refuse(ctx context.Context, tx *sql.Tx, r *Request, actor, reason string) error {
	now := s.clock.Now()
	if err := s.update(ctx, tx, r.ID, map[string]any{"status": string(StatusRefused), "completed_at": now, "refusal_reason": reason,
		"needs_review": false}); err != nil {
		return err
	}
	r.Status, r.CompletedAt, r.RefusalReason = StatusRefused, now, reason
	if err := s.record(ctx, tx, actor, "request_refused", *r, nil); err != nil {
		return err
	}
	return s.mailRequest(ctx, tx, *r, "refused")
}

// FileByEmail records the request of a person known by an email address
// (or not known at all) and mails them a single-use code. It answers the
// same whether or not the address is known: an unknown address becomes an
// email-only subject (source rights-request), who may after all hold a
// right to hear that nothing is held about them.
func (s *Service) FileByEmail(ctx context.Context, email string, f Filing, client netip.Addr) (Request, error) {
	// A few filings a minute per client network: the email form cannot be
	// used to flood a mailbox or the database from one place.
	if !s.limits.Allow(client) {
		return Request{}, &fault.Error{Code: fault.RateLimited, Message: "too many requests from your network; try again in a minute"}
	}
	if err := s.validate(ctx, &f, ChannelEmail, false); err != nil {
		return Request{}, err
	}
	now := s.clock.Now()
	var r Request
	var code string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		sub, created, err := s.subjects.EnsureByEmail(ctx, tx, s.door, door.Subject(), email, "rights-request", s.polVer)
		if err != nil {
			return err
		}
		r = s.newRequest(sub.ID, f, ChannelEmail, sub.ID, now)
		r.Status, r.VerifyBy, r.createdSubject = StatusReceived, now.Add(s.cfg.UnverifiedTTL), created
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1 AND status = 'received' AND verify_by > $2`,
			sub.ID, now).Scan(&pending); err != nil {
			return fmt.Errorf("rights: count pending: %w", err)
		}
		flooded := pending >= s.cfg.MaxPendingPerSubject
		if flooded {
			r.Status, r.RefusalReason, r.VerifyBy = StatusExpired, "too many unverified requests for this address; none was mailed", time.Time{}
		} else {
			code = newCode()
			r.codeHash, r.CodeExpiresAt = hashSecret(r.ID, code), now.Add(s.cfg.CodeTTL)
		}
		if err := s.insert(ctx, tx, r); err != nil {
			return err
		}
		if flooded {
			if err := s.update(ctx, tx, r.ID, map[string]any{"refusal_reason": r.RefusalReason, "completed_at": now}); err != nil {
				return err
			}
			return s.record(ctx, tx, "anonymous", "request_flood_refused", r, map[string]string{"channel": ChannelEmail})
		}
		if err := s.record(ctx, tx, "anonymous", "request_received", r, map[string]string{"channel": ChannelEmail}); err != nil {
			return err
		}
		addr, err := s.emailOf(ctx, tx, sub)
		if err != nil {
			return err
		}
		return s.mailCode(ctx, tx, r, addr, code)
	})
	if err != nil {
		return Request{}, err
	}
	s.jobs.Wake()
	return s.load(ctx, s.db, r.ID)
}

// newCode is an 8-digit single-use code: with at most a handful of
// attempts, guessing it succeeds about once in twenty million tries.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%08d", n.Int64())
}

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// VerifyCode proves the identity behind an emailed request with its code.
// A wrong code counts against the attempt limit, after which the request
// expires; an expired code, a replayed one (the request was verified
// already) and one past the limit are refused and audited. For access and
// portability the answer carries a token: the bearer of it, and nobody
// else, may read the request's status and download its export.
func (s *Service) VerifyCode(ctx context.Context, id, code string) (Request, string, error) {
	var r Request
	var token string
	var refused error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = s.load(ctx, tx, id); err != nil {
			return err
		}
		now := s.clock.Now()
		deny := func(action string, e error) error {
			refused = e
			return s.record(ctx, tx, "anonymous", action, r, nil)
		}
		switch {
		case r.Channel != ChannelEmail:
			return errNoRequest()
		case r.Status == StatusExpired && r.CodeAttempts >= s.cfg.CodeAttempts:
			return deny("code_locked", &fault.Error{Code: fault.RateLimited, Field: "code",
				Message: "too many wrong codes were tried: this request is closed; file it again for a new code"})
		case r.Status == StatusExpired || r.Status == StatusRefused:
			return deny("code_refused", &fault.Error{Code: fault.Conflict, Field: "code", Message: "this request has expired; file it again for a new code"})
		case r.Status != StatusReceived || len(r.codeHash) == 0:
			return deny("code_replayed", &fault.Error{Code: fault.Conflict, Field: "code", Message: "this code was already used: each code works once"})
		case !now.Before(r.CodeExpiresAt):
			return deny("code_expired", &fault.Error{Code: fault.Forbidden, Field: "code", Message: "the code has expired; file the request again for a new one"})
		}
		if subtle.ConstantTimeCompare(hashSecret(r.ID, code), r.codeHash) != 1 {
			attempts := r.CodeAttempts + 1
			sets := map[string]any{"code_attempts": attempts}
			if attempts >= s.cfg.CodeAttempts {
				sets["status"], sets["code_hash"], sets["completed_at"] = string(StatusExpired), nil, now
				sets["refusal_reason"] = "too many wrong codes"
			}
			if err := s.update(ctx, tx, r.ID, sets); err != nil {
				return err
			}
			left := s.cfg.CodeAttempts - attempts
			if left <= 0 {
				return deny("code_locked", &fault.Error{Code: fault.RateLimited, Field: "code",
					Message: "too many wrong codes were tried: this request is closed; file it again for a new code"})
			}
			return deny("code_failed", &fault.Error{Code: fault.Forbidden, Field: "code",
				Message: fmt.Sprintf("the code is wrong (%d attempt%s left)", left, plural(left))})
		}
		sets := map[string]any{"status": string(StatusVerified), "verified_at": now, "code_hash": nil, "verify_by": nil}
		if r.Type == Access || r.Type == Portability {
			token = newToken()
			sets["token_hash"] = hashSecret(r.ID, token)
		}
		if err := s.update(ctx, tx, r.ID, sets); err != nil {
			return err
		}
		r.Status, r.VerifiedAt = StatusVerified, now
		if err := s.record(ctx, tx, r.SubjectID, "request_verified", r, map[string]string{"how": "email-code"}); err != nil {
			return err
		}
		if r.Type == Erasure && r.Scope == string(policy.ScopeItem) {
			if err := s.ownsItems(ctx, tx, r.SubjectID, r.Params.Items); err != nil {
				if fault.CodeOf(err) != fault.NotFound {
					return err
				}
				return s.refuse(ctx, tx, &r, "system", "you hold no such record")
			}
		}
		staff := false
		if a, err := s.accounts.AccountOf(ctx, r.SubjectID); err == nil {
			staff = a.Staff
		}
		return s.start(ctx, tx, &r, staff)
	})
	if err != nil {
		return Request{}, "", err
	}
	if refused != nil {
		return Request{}, "", refused
	}
	s.jobs.Wake()
	r, err = s.load(ctx, s.db, id)
	return r, token, err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ByToken returns the request a verified email requester holds the token
// of. A wrong token and an unknown id are the same fault.NotFound, audited.
func (s *Service) ByToken(ctx context.Context, id, token string) (Request, error) {
	r, err := s.load(ctx, s.db, id)
	if err == nil && token != "" && len(r.tokenHash) > 0 && subtle.ConstantTimeCompare(hashSecret(r.ID, token), r.tokenHash) == 1 {
		return r, nil
	}
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		return Request{}, err
	}
	if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: "anonymous", Action: "rights.request_denied",
		Detail: map[string]string{"asked": askedID(id), "why": "bad-token-or-unknown"}}); aerr != nil {
		return Request{}, aerr
	}
	return Request{}, errNoRequest()
}

// Export is a finished export ready to send.
type Export struct {
	Name        string
	ContentType string
	Data        []byte
}

// Download returns the export of a member's own access or portability
// request. It is bound to the session that asked for it: another session
// of the same member must have re-authenticated (privileged), any other
// subject gets fault.NotFound. Each refusal is audited.
func (s *Service) Download(ctx context.Context, subjectID, sessionID string, privileged bool, id string) (Export, error) {
	r, err := s.mine(ctx, subjectID, id)
	if err != nil {
		return Export{}, err
	}
	if r.SessionID != "" && r.SessionID != sessionID && !privileged {
		if err := s.record(ctx, s.db, subjectID, "download_refused", r, map[string]string{"why": "other-session"}); err != nil {
			return Export{}, err
		}
		return Export{}, fault.New(fault.ReauthNeeded, "this download belongs to the session that asked for it: sign in again (or confirm your password) to download it here")
	}
	return s.export(ctx, r, subjectID)
}

// DownloadByToken returns the export of an email requester's request.
func (s *Service) DownloadByToken(ctx context.Context, id, token string) (Export, error) {
	r, err := s.ByToken(ctx, id, token)
	if err != nil {
		return Export{}, err
	}
	return s.export(ctx, r, "anonymous")
}

func (s *Service) export(ctx context.Context, r Request, actor string) (Export, error) {
	if r.Type != Access && r.Type != Portability {
		return Export{}, fault.New(fault.NotFound, "this request has nothing to download")
	}
	if r.Status != StatusCompleted {
		return Export{}, fault.New(fault.Conflict, "the export is not ready yet (%d%% done)", r.Progress)
	}
	var sealed []byte
	var format string
	var expires time.Time
	err := s.db.QueryRowContext(ctx, `SELECT content, format, expires_at FROM rights_exports WHERE request_id = $1`, r.ID).Scan(&sealed, &format, &expires)
	if err == sql.ErrNoRows || (err == nil && !s.clock.Now().Before(expires)) {
		_ = s.record(ctx, s.db, actor, "download_refused", r, map[string]string{"why": "expired"})
		return Export{}, fault.New(fault.NotFound, "this download has expired or was erased; ask for a new copy")
	}
	if err != nil {
		return Export{}, fmt.Errorf("rights: read export: %w", err)
	}
	var data []byte
	v, err := s.door.Subject(ctx, s.db, door.Subject(), r.SubjectID)
	if err == nil {
		data, err = v.OpenDerived(ctx, exportKeyCategory, sealed)
	}
	if err != nil {
		_ = s.record(ctx, s.db, actor, "download_refused", r, map[string]string{"why": "erased"})
		return Export{}, fault.Wrap(fault.NotFound, err, "this download was erased; ask for a new copy")
	}
	if err := s.record(ctx, s.db, actor, "download", r, map[string]string{"bytes": strconv.Itoa(len(data))}); err != nil {
		return Export{}, err
	}
	return Export{Name: "privacy-" + string(r.Type) + "-" + r.ID + ".zip", ContentType: "application/zip", Data: data}, nil
}

// Approve is a staff decision in favour of a request waiting for review:
// a rectification is applied, an objection upheld, the erasure of a staff
// account started.
func (s *Service) Approve(ctx context.Context, staffID, id, note string) (Request, error) {
	note, err := cleanFree("note", note, maxReason)
	if err != nil {
		return Request{}, err
	}
	actor := "staff:" + staffID
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != StatusVerified || !r.NeedsReview {
			return fault.New(fault.Conflict, "this request is not waiting for a decision (it is %s)", r.Status)
		}
		if err := s.update(ctx, tx, r.ID, map[string]any{"handled_by": actor}); err != nil {
			return err
		}
		if err := s.record(ctx, tx, actor, "request_approved", r, nil); err != nil {
			return err
		}
		switch r.Type {
		case Rectification:
			applied, err := s.applyCorrections(ctx, tx, r)
			if err != nil {
				return err
			}
			res := map[string]any{"corrected": applied, "note": note}
			if err := s.complete(ctx, tx, &r, actor, res); err != nil {
				return err
			}
			return s.scheduleLift(ctx, tx, r)
		case Objection:
			return s.complete(ctx, tx, &r, actor, map[string]any{"objection": "upheld", "purposes": r.Params.Purposes, "note": note})
		case Erasure:
			if err := s.update(ctx, tx, r.ID, map[string]any{"needs_review": false}); err != nil {
				return err
			}
			return s.enqueueProcess(ctx, tx, r.ID)
		}
		return fault.New(fault.Conflict, "a %s request needs no approval", r.Type)
	})
	if err != nil {
		return Request{}, err
	}
	s.jobs.Wake()
	return s.load(ctx, s.db, id)
}

// Refuse ends a request with the reason the subject is told (Art. 12(4)).
// An objection to direct marketing cannot be refused (Art. 21(3)); the
// compelling grounds for refusing another objection are the reason, and
// the objection is lifted. A restriction placed while a correction was
// assessed is lifted after the subject was told.
func (s *Service) Refuse(ctx context.Context, staffID, id, reason string) (Request, error) {
	reason, err := cleanFree("reason", reason, maxReason)
	if err != nil {
		return Request{}, err
	}
	if reason == "" {
		return Request{}, fault.FieldError("reason", "a refusal needs a reason the person is told")
	}
	actor := "staff:" + staffID
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return fault.New(fault.Conflict, "this request is already %s", r.Status)
		}
		if r.Type == Objection {
			for _, p := range r.Params.Purposes {
				if s.isDirectMarketing(p) {
					return fault.New(fault.Conflict, "an objection to direct marketing cannot be refused (GDPR Art. 21(3))")
				}
			}
			for _, p := range r.Params.Purposes {
				if err := s.subjects.SetObjection(ctx, tx, r.SubjectID, p, false); err != nil && fault.CodeOf(err) != fault.Conflict {
					return err
				}
			}
		}
		if err := s.update(ctx, tx, r.ID, map[string]any{"handled_by": actor}); err != nil {
			return err
		}
		if err := s.refuse(ctx, tx, &r, actor, reason); err != nil {
			return err
		}
		if r.Type == Rectification {
			return s.scheduleLift(ctx, tx, r)
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	return s.load(ctx, s.db, id)
}

// Extend moves the due date by up to two further months (Art. 12(3)),
// only while the first month runs, with a reason the subject is told.
func (s *Service) Extend(ctx context.Context, staffID, id string, months int, reason string) (Request, error) {
	reason, err := cleanFree("reason", reason, maxReason)
	if err != nil {
		return Request{}, err
	}
	if reason == "" {
		return Request{}, fault.FieldError("reason", "an extension needs a reason the person is told")
	}
	if months < 1 || months > 2 {
		return Request{}, fault.FieldError("months", "an extension is 1 or 2 months")
	}
	actor := "staff:" + staffID
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return fault.New(fault.Conflict, "this request is already %s", r.Status)
		}
		now := s.clock.Now()
		if !now.Before(r.FirstMonthEnds()) {
			return fault.New(fault.Conflict, "a request can be extended only within its first month, which ended on %s", r.FirstMonthEnds().Format("2 January 2006"))
		}
		total := r.ExtendedMonths + months
		if total > 2 {
			return fault.FieldError("months", "the deadline was already extended by %d month%s; the law allows two in all", r.ExtendedMonths, plural(r.ExtendedMonths))
		}
		due := clock.AddMonths(r.ReceivedAt, 1+total)
		if err := s.update(ctx, tx, r.ID, map[string]any{"extended_months": total, "extension_reason": reason, "due_at": due, "handled_by": actor}); err != nil {
			return err
		}
		r.ExtendedMonths, r.ExtensionReason, r.DueAt = total, reason, due
		if err := s.record(ctx, tx, actor, "request_extended", r, map[string]string{"months": strconv.Itoa(total), "due": due.Format(time.RFC3339)}); err != nil {
			return err
		}
		return s.mailRequest(ctx, tx, r, "extended")
	})
	if err != nil {
		return Request{}, err
	}
	return s.load(ctx, s.db, id)
}

// MarkUnderAge records that a member is under the policy's minimum age
// and erases their account the same way a request would (J26), without
// the archive exemption: the policy promises a child's data is deleted
// once known.
func (s *Service) MarkUnderAge(ctx context.Context, staffID, subjectID, note string) (Request, error) {
	note, err := cleanFree("note", note, maxReason)
	if err != nil {
		return Request{}, err
	}
	acct, err := s.accounts.AccountOf(ctx, subjectID)
	if err != nil {
		return Request{}, err
	}
	if acct.Staff {
		return Request{}, fault.New(fault.Conflict, "a staff account cannot be marked under age; remove its role first")
	}
	now := s.clock.Now()
	actor := "staff:" + staffID
	r := s.newRequest(subjectID, Filing{Type: Erasure, Scope: string(policy.ScopeAccount), Reason: note}, ChannelStaff, actor, now)
	r.Params.UnderAge = true
	r.Status, r.VerifiedAt = StatusVerified, now
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insert(ctx, tx, r); err != nil {
			return err
		}
		if err := s.record(ctx, tx, actor, "under_age_marked", r, map[string]string{"minimum_age": strconv.Itoa(s.pol.MinimumAge)}); err != nil {
			return err
		}
		if err := s.record(ctx, tx, actor, "request_verified", r, map[string]string{"how": "staff"}); err != nil {
			return err
		}
		return s.start(ctx, tx, &r, false)
	})
	if err != nil {
		return Request{}, err
	}
	s.jobs.Wake()
	return s.load(ctx, s.db, r.ID)
}
