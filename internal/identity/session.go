package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mileusna/useragent"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// Meta is what the server knows of the client making a request. It feeds
// the rate limits and the session list; neither the address nor the user
// agent is ever stored whole.
type Meta struct {
	IP        netip.Addr
	UserAgent string
}

// LogValue keeps the address out of logs.
func (m Meta) LogValue() slog.Value {
	return slog.GroupValue(slog.String("network", truncatedNetwork(m.IP)))
}

// Session is one signed-in session. ExpiresAt is when it ends if unused:
// the earlier of its idle and absolute expiry. AuthAt is the last time the
// password was given in it. Current marks the caller's own session in a
// list.
type Session struct {
	ID              string
	SubjectID       string
	CreatedAt       time.Time
	LastSeenAt      time.Time
	ExpiresAt       time.Time
	AuthAt          time.Time
	UserAgentFamily string
	Network         string
	Current         bool
	// SecondFactorAt is when a second factor was given in the session
	// (zero: not yet).
	SecondFactorAt time.Time
}

// Principal is an authenticated request's account and session.
type Principal struct {
	Account Account
	Session Session
	// SecondFactor says what the session still owes before it may reach
	// anything but the pages that settle it: SecondFactorVerify (the
	// account has a second factor not yet given in this session),
	// SecondFactorEnrol (the account's role requires one and it has none),
	// or "" (nothing).
	SecondFactor string
}

// Privileged reports whether the session may perform sensitive actions
// without the password: it was authenticated within ReauthWindow.
func (p Principal) Privileged(now time.Time) bool {
	return !p.Session.AuthAt.IsZero() && now.Sub(p.Session.AuthAt) < ReauthWindow
}

// touchEvery bounds how often a session's last use is written: at most
// once a minute, so authenticated reads do not each cost a write.
const touchEvery = time.Minute

// truncatedNetwork is the network shown in the session list: the /24 of
// an IPv4 address, the /48 of an IPv6 one.
func truncatedNetwork(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	bits := 24
	if ip.Is6() {
		bits = 48
	}
	p, _ := ip.Prefix(bits)
	return p.String()
}

// userAgentFamily reduces a user agent to browser and system families,
// "Firefox on Linux", enough to recognise a session and no more.
func userAgentFamily(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 512 {
		s = s[:512]
	}
	ua := useragent.Parse(s)
	name, os := ua.Name, ua.OS
	if name == "" {
		name = "Unknown browser"
	}
	out := name
	if os != "" {
		out += " on " + os
	}
	out = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, out)
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

func newSessionID() string {
	var b [15]byte
	rand.Read(b[:])
	return "ses_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func errLoginFailed() error {
	return fault.New(fault.Unauthorized, "the email address or password is wrong")
}

func errNoSession() error {
	return fault.New(fault.Unauthorized, "not signed in, or the session has expired")
}

// lifetimes returns the idle and absolute lifetime of a session of an
// account with role.
func (s *Service) lifetimes(role string) (idle, absolute time.Duration) {
	if role != "" {
		return s.cfg.StaffSessionIdle, s.cfg.StaffSessionAbsolute
	}
	return s.cfg.SessionIdle, s.cfg.SessionAbsolute
}

// Login checks an address and password and opens a session, returning it
// and its bearer token (shown once; only its hash is kept). A wrong
// password and an unknown address fail alike, after the same argon2id
// work; a locked account or network fails with fault.RateLimited before
// any work, known address or not. A hash made with weaker parameters than
// the current ones is replaced. Unverified accounts may log in.
func (s *Service) Login(ctx context.Context, email, password string, m Meta) (Session, string, error) {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return Session{}, "", errThrottled()
	}
	pw, err := normalizePassword(FieldPassword, password)
	if err != nil {
		return Session{}, "", err
	}
	norm, err := subject.NormalizeEmail(email)
	key := norm
	if err != nil {
		// Not an address anyone could have registered; limit it like
		// any other and fail the same way.
		if len(email) > 256 {
			email = email[:256]
		}
		key, norm = "invalid:"+email, ""
	}
	cs := s.thr.keys(scopeLoginAccount, scopeLoginIP, key, m.IP)
	if err := s.thr.check(ctx, now, cs); err != nil {
		return Session{}, "", err
	}
	var a accountRow
	found := false
	if norm != "" {
		sub, err := s.subjects.FindByEmail(ctx, s.db, s.door, norm)
		switch {
		case err == nil:
			a, err = loadAccount(ctx, s.db, sub.ID)
			if err != nil && fault.CodeOf(err) != fault.NotFound {
				return Session{}, "", err
			}
			found = err == nil && !a.password.IsZero()
		case fault.CodeOf(err) != fault.NotFound:
			return Session{}, "", err
		}
	}
	encoded := s.dummyHash
	if found {
		if encoded, err = s.passwordHash(ctx, s.db, door.System(policy.Security), a); err != nil {
			return Session{}, "", err
		}
	}
	ok, weaker, err := verifyPassword(pw, encoded, s.cfg.Argon2)
	if err != nil {
		return Session{}, "", err
	}
	if !found || !ok {
		ev := audit.Event{Actor: "anonymous", Action: "session.login_failed"}
		if found {
			ev.Subject = a.subjectID
		}
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.thr.hit(ctx, tx, now, cs); err != nil {
				return err
			}
			return s.audit.Record(ctx, tx, ev)
		})
		if err != nil {
			return Session{}, "", fmt.Errorf("identity: login: %w", err)
		}
		return Session{}, "", errLoginFailed()
	}
	var sess Session
	var tok string
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.thr.reset(ctx, tx, cs[0]); err != nil {
			return err
		}
		if weaker {
			h, err := hashPassword(pw, s.cfg.Argon2)
			if err != nil {
				return err
			}
			sealed, err := s.sealPassword(ctx, tx, door.System(policy.Security), a.subjectID, h)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_sealed = $2, updated_at = $3 WHERE subject_id = $1`, a.subjectID, sealed, now); err != nil {
				return fmt.Errorf("identity: rehash: %w", err)
			}
		}
		var err error
		sess, tok, err = s.openSession(ctx, tx, a.subjectID, a.role, m, now)
		if err != nil {
			return err
		}
		detail := map[string]string{"session": sess.ID}
		if weaker {
			detail["rehashed"] = "true"
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: a.subjectID, Action: "session.login", Subject: a.subjectID, Detail: detail})
	})
	if err != nil {
		return Session{}, "", fmt.Errorf("identity: login: %w", err)
	}
	s.log.InfoContext(ctx, "login", slog.String("subject", a.subjectID), slog.String("session", sess.ID))
	return sess, tok, nil
}

// openSession stores a new session and returns it with its token. The
// browser family and the network, kept so the owner recognises their
// sessions, are sealed for security, the purpose they serve.
func (s *Service) openSession(ctx context.Context, q store.Q, subjectID, role string, m Meta, now time.Time) (Session, string, error) {
	idle, absolute := s.lifetimes(role)
	tok, hash := newToken()
	sess := Session{
		ID: newSessionID(), SubjectID: subjectID, CreatedAt: now, LastSeenAt: now, AuthAt: now,
		ExpiresAt: now.Add(min(idle, absolute)), UserAgentFamily: userAgentFamily(m.UserAgent), Network: truncatedNetwork(m.IP),
		Current: true,
	}
	v, err := s.door.Subject(ctx, q, door.System(policy.Security), subjectID)
	if err != nil {
		return Session{}, "", err
	}
	ua, err := v.Seal(ctx, fieldSession, sess.UserAgentFamily)
	if err != nil {
		return Session{}, "", fmt.Errorf("identity: open session: %w", err)
	}
	network, err := v.Seal(ctx, fieldSession, sess.Network)
	if err != nil {
		return Session{}, "", fmt.Errorf("identity: open session: %w", err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO sessions (id, subject_id, token_hash, created_at, last_seen_at, idle_expires_at, expires_at, auth_at, user_agent_sealed, network_sealed)
		VALUES ($1, $2, $3, $4, $4, $5, $6, $4, $7, $8)`,
		sess.ID, subjectID, hash, now, now.Add(idle), now.Add(absolute), ua, network)
	if err != nil {
		return Session{}, "", fmt.Errorf("identity: open session: %w", err)
	}
	return sess, tok, nil
}

// fieldSession is the policy field of a session's record.
const fieldSession = "session"

const sessionColumns = `id, subject_id, created_at, last_seen_at, idle_expires_at, expires_at, auth_at, second_factor_at`

func scanSession(row interface{ Scan(...any) error }, sealed ...any) (Session, time.Time, time.Time, error) {
	var sess Session
	var idleAt, absAt time.Time
	var second sql.NullTime
	err := row.Scan(append([]any{&sess.ID, &sess.SubjectID, &sess.CreatedAt, &sess.LastSeenAt, &idleAt, &absAt, &sess.AuthAt, &second}, sealed...)...)
	sess.CreatedAt, sess.LastSeenAt, sess.AuthAt = sess.CreatedAt.UTC(), sess.LastSeenAt.UTC(), sess.AuthAt.UTC()
	sess.SecondFactorAt = second.Time.UTC()
	idleAt, absAt = idleAt.UTC(), absAt.UTC()
	sess.ExpiresAt = absAt
	if idleAt.Before(absAt) {
		sess.ExpiresAt = idleAt
	}
	return sess, idleAt, absAt, err
}

// Authenticate returns the principal of a session token. Sessions end
// after their idle time without use or their absolute lifetime, whichever
// comes first; a use extends the idle time (written at most once a
// minute). fault.Unauthorized for an unknown or expired token.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	hash, ok := tokenHash(token)
	if !ok {
		return Principal{}, errNoSession()
	}
	now := s.clock.Now()
	sess, _, absAt, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errNoSession()
	}
	if err != nil {
		return Principal{}, fmt.Errorf("identity: authenticate: %w", err)
	}
	if !now.Before(sess.ExpiresAt) {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, sess.ID); err != nil {
			return Principal{}, fmt.Errorf("identity: end session: %w", err)
		}
		return Principal{}, errNoSession()
	}
	a, err := loadAccount(ctx, s.db, sess.SubjectID)
	if fault.CodeOf(err) == fault.NotFound {
		return Principal{}, errNoSession()
	}
	if err != nil {
		return Principal{}, err
	}
	sub, err := s.subjects.Get(ctx, s.db, sess.SubjectID)
	if err != nil {
		return Principal{}, fmt.Errorf("identity: authenticate: %w", err)
	}
	if sub.Erased() || sub.MergedInto != "" {
		return Principal{}, errNoSession()
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		idle, _ := s.lifetimes(a.role)
		idleAt := now.Add(idle)
		if idleAt.After(absAt) {
			idleAt = absAt
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id = $1`, sess.ID, now, idleAt); err != nil {
			return Principal{}, fmt.Errorf("identity: touch session: %w", err)
		}
		sess.LastSeenAt, sess.ExpiresAt = now, idleAt
	}
	sess.Current = true
	p := Principal{Account: a.account(sub.HasEmail), Session: sess}
	if sess.SecondFactorAt.IsZero() {
		if p.SecondFactor, err = s.owedFactor(ctx, s.db, p.Account); err != nil {
			return Principal{}, err
		}
	}
	return p, nil
}

// Logout ends the session of a token. An unknown token is not an error:
// the session is gone either way.
func (s *Service) Logout(ctx context.Context, token string) error {
	hash, ok := tokenHash(token)
	if !ok {
		return nil
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var id, subjectID string
		err := tx.QueryRowContext(ctx, `DELETE FROM sessions WHERE token_hash = $1 RETURNING id, subject_id`, hash).Scan(&id, &subjectID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("identity: logout: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "session.logout", Subject: subjectID, Detail: map[string]string{"session": id}})
	})
}

// Sessions lists the live sessions of a subject, most recently used first.
func (s *Service) Sessions(ctx context.Context, use door.Use, subjectID string) ([]Session, error) {
	now := s.clock.Now()
	v, err := s.door.Subject(ctx, s.db, use, subjectID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+`, user_agent_sealed, network_sealed FROM sessions
		WHERE subject_id = $1 AND expires_at > $2 AND idle_expires_at > $2 ORDER BY last_seen_at DESC, created_at DESC`, subjectID, now)
	if err != nil {
		return nil, fmt.Errorf("identity: sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var ua, network door.Sealed
		sess, _, _, err := scanSession(rows, &ua, &network)
		if err != nil {
			return nil, fmt.Errorf("identity: sessions: %w", err)
		}
		if sess.UserAgentFamily, err = v.Open(ctx, fieldSession, ua); err != nil && !errors.Is(err, door.ErrShredded) {
			return nil, err
		}
		if sess.Network, err = v.Open(ctx, fieldSession, network); err != nil && !errors.Is(err, door.ErrShredded) {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// SessionsOf lists the principal's sessions with its own marked Current.
func (s *Service) SessionsOf(ctx context.Context, p Principal) ([]Session, error) {
	list, err := s.Sessions(ctx, door.Subject(), p.Account.SubjectID)
	for i := range list {
		list[i].Current = list[i].ID == p.Session.ID
	}
	return list, err
}

// RevokeSession ends one session of a subject. fault.NotFound when the
// session is not theirs (or does not exist): the two look the same.
func (s *Service) RevokeSession(ctx context.Context, subjectID, sessionID string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1 AND subject_id = $2`, sessionID, subjectID)
		if err != nil {
			return fmt.Errorf("identity: revoke session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.New(fault.NotFound, "no such session")
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "session.revoke", Subject: subjectID, Detail: map[string]string{"session": sessionID}})
	})
}

// RevokeOtherSessions ends every session of the principal but the current
// one and returns how many it ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, p Principal) (int, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = s.revokeAll(ctx, tx, p.Account.SubjectID, p.Session.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "session.revoke_others", Subject: p.Account.SubjectID,
			Detail: map[string]string{"count": strconv.FormatInt(n, 10), "kept": p.Session.ID}})
	})
	return int(n), err
}

// revokeAll deletes every session of a subject except keep ("" for none).
func (s *Service) revokeAll(ctx context.Context, q store.Q, subjectID, keep string) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM sessions WHERE subject_id = $1 AND id <> $2`, subjectID, keep)
	if err != nil {
		return 0, fmt.Errorf("identity: revoke sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Reauthenticate confirms the principal may perform a sensitive action
// (changing the address or password; later export and erasure): nil when
// the session logged in within ReauthWindow, or when password is the
// account's, which also makes the session privileged again. Otherwise
// fault.ReauthNeeded. Wrong passwords count towards the account's login
// lock, so a stolen session cannot be used to guess the password.
func (s *Service) Reauthenticate(ctx context.Context, p Principal, password string) error {
	now := s.clock.Now()
	if p.Privileged(now) {
		return nil
	}
	if password == "" {
		return fault.New(fault.ReauthNeeded, "confirm your password to continue")
	}
	pw, err := normalizePassword(FieldPassword, password)
	if err != nil {
		return err
	}
	// Counted per subject: re-authentication needs a session already.
	key := "subject:" + p.Account.SubjectID
	cs := s.thr.keys(scopeLoginAccount, scopeLoginIP, key, netip.Addr{})
	if err := s.thr.check(ctx, now, cs); err != nil {
		return err
	}
	a, err := loadAccount(ctx, s.db, p.Account.SubjectID)
	if err != nil {
		return err
	}
	encoded := s.dummyHash
	if !a.password.IsZero() {
		if encoded, err = s.passwordHash(ctx, s.db, door.System(policy.Security), a); err != nil {
			return err
		}
	}
	ok, _, err := verifyPassword(pw, encoded, s.cfg.Argon2)
	if err != nil {
		return err
	}
	if !ok || a.password.IsZero() {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.thr.hit(ctx, tx, now, cs); err != nil {
				return err
			}
			return s.audit.Record(ctx, tx, audit.Event{Actor: a.subjectID, Action: "session.reauth_failed", Subject: a.subjectID,
				Detail: map[string]string{"session": p.Session.ID}})
		})
		if err != nil {
			return fmt.Errorf("identity: reauthenticate: %w", err)
		}
		return fault.New(fault.ReauthNeeded, "the password is wrong")
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET auth_at = $2 WHERE id = $1`, p.Session.ID, now); err != nil {
		return fmt.Errorf("identity: reauthenticate: %w", err)
	}
	return nil
}
