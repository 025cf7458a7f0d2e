package disclosure_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/disclosure"
	"steward/internal/policy"
	"steward/internal/schema"
	"steward/internal/store/storetest"
)

// benchEnv builds the services on SQLite under JMIR's policy with n
// extra partners (p01…), each with a webhook at one local server.
func benchEnv(b *testing.B, partners int) (*services.Services, string) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	b.Cleanup(srv.Close)
	pol := servicestest.Example(b, "jmir.yaml")
	vars := map[string]string{"STEWARD_WEBHOOKS_ALLOW_PRIVATE": "1", "STEWARD_RECIPIENT_BRAND_PARTNERS_SECRET": partnerSecret}
	bp := pol.Recipient("brand-partners")
	bp.Webhook.URL = srv.URL
	for i := 1; i <= partners; i++ {
		r := *bp
		r.ID, r.Name = fmt.Sprintf("p%02d", i), fmt.Sprintf("Partner %d", i)
		env := fmt.Sprintf("STEWARD_RECIPIENT_P%02d_SECRET", i)
		r.Webhook = &policy.RecipientWebhook{URL: srv.URL, SecretEnv: env}
		vars[env] = partnerSecret
		pol.Recipients = append(pol.Recipients, &r)
	}
	db := storetest.SQLite(b, schema.Migrations())
	svc, _ := servicestest.Build(b, db, pol, services.Config{Getenv: func(k string) string { return vars[k] }}, nil)
	return svc, servicestest.Member(b, svc, "ann@example.org", "Ann Lee")
}

// One disclosure: the policy checks, the basis, the guard with the
// subject's state, the register row, the audit entry, the sealed
// delivery and its job, in one transaction (goal < 1 ms on SQLite).
func BenchmarkDisclose(b *testing.B) {
	svc, ann := benchEnv(b, 0)
	ctx := context.Background()
	req := disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: ann,
		Values: map[string]string{"name": "Ann Lee", "email": "ann@example.org"}, Basis: disclosure.BasisContract, Actor: "subject"}
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Disclosure.Disclose(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// A refused disclosure (a purpose the recipient is not declared with):
// the check and the audit entry.
func BenchmarkDiscloseRefused(b *testing.B) {
	svc, ann := benchEnv(b, 0)
	ctx := context.Background()
	req := disclosure.Request{Recipient: "brand-partners", Purpose: "marketing", Subject: ann,
		Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisConsent}
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Disclosure.Disclose(ctx, req); err == nil {
			b.Fatal("allowed")
		}
	}
}

// One erasure propagated to 20 recipients that each received the
// subject's data: the register read, 20 signed events and their jobs
// queued in the completing transaction.
func BenchmarkPropagateErasure20(b *testing.B) {
	svc, ann := benchEnv(b, 20)
	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		if _, err := svc.Disclosure.Disclose(ctx, disclosure.Request{Recipient: fmt.Sprintf("p%02d", i), Purpose: "order-fulfilment",
			Subject: ann, Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisContract}); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		err := svc.DB.InTx(ctx, func(tx *sql.Tx) error {
			told, err := svc.Disclosure.Propagate(ctx, tx, disclosure.Change{Request: fmt.Sprintf("rr_%d", n), Kind: disclosure.ChangeErasure,
				Subjects: []string{ann}})
			if err == nil && len(told) != 20 {
				err = fmt.Errorf("told %d", len(told))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// The same, and the 20 events delivered to a local endpoint through the
// job runner (signed POSTs, the delivery log, the status).
func BenchmarkPropagateErasure20Delivered(b *testing.B) {
	svc, ann := benchEnv(b, 20)
	ctx := context.Background()
	for i := 1; i <= 20; i++ {
		if _, err := svc.Disclosure.Disclose(ctx, disclosure.Request{Recipient: fmt.Sprintf("p%02d", i), Purpose: "order-fulfilment",
			Subject: ann, Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisContract}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.Jobs.RunDue(ctx); err != nil {
		b.Fatal(err)
	}
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		if err := svc.DB.InTx(ctx, func(tx *sql.Tx) error {
			_, err := svc.Disclosure.Propagate(ctx, tx, disclosure.Change{Request: fmt.Sprintf("rr_%d", n), Kind: disclosure.ChangeErasure,
				Subjects: []string{ann}})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if k, err := svc.Jobs.RunDue(ctx); err != nil || k != 20 {
			b.Fatalf("ran %d jobs: %v", k, err)
		}
	}
}

// The transparency report over 100,000 legal requests, each asking about
// one account, all in the current half-year (counted live, the worst
// case; ended half-years are read as published). Goal < 50 ms.
func BenchmarkTransparency100k(b *testing.B) {
	svc, _ := benchEnv(b, 0)
	ctx := context.Background()
	now := svc.Clock.Now()
	kinds := disclosure.Kinds
	jur := []string{"US", "JP", "DE", "FR", "GB", "IN", "CA", "BR"}
	err := svc.DB.InTx(ctx, func(tx *sql.Tx) error {
		for i := range 100_000 {
			id := fmt.Sprintf("lr_%06d", i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO legal_requests (id, kind, jurisdiction, authority, recipient_id, categories, received_at,
				decision, notify, accounts, recorded_by, updated_at) VALUES ($1, $2, $3, 'A', 'authorities', '["identity"]', $4, $5, 'never', 1, 'staff:x', $4)`,
				id, kinds[i%len(kinds)], jur[i%len(jur)], now.Add(-time.Duration(i)*time.Second), disclosure.Decisions[i%len(disclosure.Decisions)]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO legal_request_subjects (request_id, subject_id) VALUES ($1, $2)`,
				id, fmt.Sprintf("s_%06d", i%30_000)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// The counts the service keeps with the register, as recording each
	// request would have left them.
	period := fmt.Sprintf("%d-H%d", now.Year(), 1+(int(now.Month())-1)/6)
	if _, err := svc.DB.ExecContext(ctx, `INSERT INTO legal_request_tally (period, kind, jurisdiction, decision, requests, accounts)
		SELECT $1, kind, jurisdiction, decision, COUNT(*), SUM(accounts) FROM legal_requests GROUP BY kind, jurisdiction, decision`, period); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.DB.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := svc.Disclosure.Transparency(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total := 0
		for _, p := range rep.Periods {
			total += p.Requests
		}
		if total != 100_000 {
			b.Fatalf("counted %d", total)
		}
	}
}
