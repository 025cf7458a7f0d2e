package rights_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"steward/internal/mail/mailtest"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/rights"
)

// rectifiable is a declared field the member cannot change on the account
// page, so correcting it is a reviewed request.
func rectifiable(p *policy.Policy) string {
	for _, f := range p.Fields() {
		if f != "password" && f != "session" && !p.SelfEditable(f) {
			return f
		}
	}
	return ""
}

// TestEndToEndEveryRequestType is the "done when": on both
// engines and under both example policies, a member who touches every
// registered table runs each request type through the HTTP API, and after
// the erasure a scan of every table finds none of the member's values
// outside the stated exemptions.
func TestEndToEndEveryRequestType(t *testing.T) {
	for _, pf := range []string{"mixi.yaml", "jmir.yaml"} {
		t.Run(pf, func(t *testing.T) {
			eachWeb(t, pf, func(t *testing.T, w *web) {
				endToEnd(t, w)
			})
		})
	}
}

func endToEnd(t *testing.T, w *web) {
	w.a.Rights.AddFiles(files{"holiday.jpg": "JPEG-ANN", "../../etc/passwd": "root"})
	ann, annID := w.member("ann@example.org", "Ann Example")
	bob, bobID := w.member("bob@example.org", "Bob Other")
	staff := func() *client {
		if err := w.a.Identity.CreateStaff(w.ctx, "officer@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		c, _ := w.login("officer@example.org")
		return c
	}()

	// Ann touches tables through the product's own API where it exists...
	want(t, ann.do("PATCH", "/api/v1/me", map[string]string{"phone": "+44 20 7946 0001"}), 200, "set phone")
	for _, p := range w.a.Policy.Policy.ConsentPurposes() {
		want(t, ann.do("PUT", "/api/v1/me/consents/"+p.ID, map[string]string{"state": "given"}), 200, "consent")
	}
	for _, l := range w.a.Policy.Policy.Newsletters {
		r := ann.do("PUT", "/api/v1/me/newsletters/"+l.ID, map[string]any{})
		if r.status != 200 {
			t.Logf("subscribe %s: %d %s", l.ID, r.status, r.body)
		}
	}
	w.run()
	// ...and the seeder fills every other personal table, whatever later
	// capabilities register, so the test covers them without knowing them.
	vals := w.env.seed(annID, "ANN")
	w.env.seed(bobID, "BOB")
	for _, tab := range w.env.reg.Personal() {
		if strings.HasPrefix(tab.Name, "rights_") {
			continue // filled by the requests below
		}
		if n := w.env.count(`SELECT COUNT(*) FROM "`+tab.Name+`" WHERE "`+tab.SubjectColumn+`" = $1`, annID); n == 0 {
			if !undeclaredOnly(w.a.Policy.Policy, tab.Columns) {
				t.Errorf("Ann has no row in %s", tab.Name)
			}
		}
	}

	// Access: the report, through the API.
	r := ann.do("GET", "/api/v1/me/data", nil)
	want(t, r, 200, "access report")
	var rep report
	r.json(t, &rep)
	for _, tab := range w.env.reg.Personal() {
		n := w.env.count(`SELECT COUNT(*) FROM "`+tab.Name+`" WHERE "`+tab.SubjectColumn+`" = $1`, annID)
		if n == 0 {
			continue
		}
		if tab.Name == "audit_log" {
			n-- // reading the report is itself audited, after the report was made
		}
		if s := rep.set(tab.Dataset); s == nil {
			t.Errorf("access report: dataset %s (%s) missing", tab.Dataset, tab.Name)
		} else if s.Count != n || len(s.Rows) != n {
			t.Errorf("access report: dataset %s (%s) has %d rows (count %d), the table %d", tab.Dataset, tab.Name, len(s.Rows), s.Count, n)
		}
	}
	if strings.Contains(string(r.body), bobID) || strings.Contains(string(r.body), "BOB-") {
		t.Errorf("Ann's access report names Bob")
	}

	// Access and portability as requests: jobs, progress, ZIPs.
	acc := ann.file(map[string]any{"type": "access", "password": testPassword})
	port := ann.file(map[string]any{"type": "portability", "password": testPassword})
	for _, x := range []requestOut{acc, port} {
		if x.Status != "verified" || !x.DueAt.Equal(x.ReceivedAt.AddDate(0, 1, 0)) {
			t.Errorf("filed %s: status %s due %v received %v", x.ID, x.Status, x.DueAt, x.ReceivedAt)
		}
	}
	w.run()
	acc, port = ann.request(acc.ID), ann.request(port.ID)
	if acc.Status != "completed" || port.Status != "completed" || acc.Download == "" {
		t.Fatalf("exports: access %s, portability %s", acc.Status, port.Status)
	}
	r = ann.do("GET", acc.Download, nil)
	want(t, r, 200, "download access")
	zaccess := unzip(t, r.body)
	for _, name := range []string{"access.json", "index.html", "account.csv"} {
		if _, ok := zaccess[name]; !ok {
			t.Errorf("access ZIP lacks %s", name)
		}
	}
	r = ann.do("GET", port.Download, nil)
	want(t, r, 200, "download portability")
	zport := unzip(t, r.body)
	checkPortability(t, w, zport, vals)

	// Rectification with restriction meanwhile, reviewed by staff.
	field := rectifiable(w.a.Policy.Policy)
	rect := ann.file(map[string]any{"type": "rectification", "fields": []string{field}, "corrections": map[string]string{field: "corrected"},
		"reason": "It is out of date.", "restrict": true})
	if !rect.NeedsReview {
		t.Errorf("rectification does not wait for review")
	}
	st, _ := w.a.Subjects.State(w.ctx, w.a.DB, annID)
	if !st.Restricted {
		t.Errorf("no restriction while the correction is assessed")
	}
	r = staff.do("GET", "/api/v1/admin/requests", nil)
	want(t, r, 200, "queue")
	if !strings.Contains(string(r.body), rect.ID) {
		t.Errorf("the queue lacks the rectification")
	}
	want(t, staff.do("POST", "/api/v1/admin/requests/"+rect.ID+"/approve", map[string]string{"note": "checked"}), 200, "approve")
	w.run()
	if got := ann.request(rect.ID); got.Status != "completed" {
		t.Errorf("rectification %s", got.Status)
	}
	if st, _ := w.a.Subjects.State(w.ctx, w.a.DB, annID); st.Restricted {
		t.Errorf("the restriction placed for the review was not lifted")
	}

	// Restriction, then lifting it.
	res := ann.file(map[string]any{"type": "restriction"})
	if res.Status != "completed" {
		t.Errorf("restriction %s", res.Status)
	}
	ann.file(map[string]any{"type": "restriction", "lift": true})

	// Objection to direct marketing: at once.
	obj := ann.file(map[string]any{"type": "objection", "purposes": []string{"direct-marketing"}})
	if obj.Status != "completed" {
		t.Errorf("objection to direct marketing: %s", obj.Status)
	}
	if st, _ := w.a.Subjects.State(w.ctx, w.a.DB, annID); !st.MarketingSuppressed {
		t.Errorf("marketing not suppressed")
	}

	// Erasure of the account, without staff.
	w.smtp.Reset()
	er := ann.file(map[string]any{"type": "erasure", "scope": "account", "password": testPassword})
	w.run()
	var final rights.Request
	if final, _ = w.a.Rights.Get(w.ctx, er.ID); final.Status != rights.StatusCompleted {
		t.Fatalf("erasure: %s %s", final.Status, final.Result)
	}
	m := w.smtp.WaitFor(t, func(m mailtest.Received) bool {
		return mailtest.SentTo("ann@example.org")(m) && strings.Contains(m.Subject, "erased")
	}, 5*time.Second)
	_ = m
	out := outcomeOf(t, final)
	needles := []string{"ann@example.org", "Ann Example", "+44 20 7946 0001", "JPEG-ANN"}
	for _, v := range vals {
		needles = append(needles, v.Value)
	}
	for needle, where := range scan(t, w.a.DB, needles) {
		for _, place := range where {
			if !allowedAfterErasure(w.env.reg, strings.SplitN(place, ".", 2)[0], out.Kept) {
				t.Errorf("after erasure %q is still in %s", needle, place)
			}
		}
	}
	// Ann's session is gone; Bob's data and session are not.
	want(t, ann.do("GET", "/api/v1/me", nil), 401, "Ann after erasure")
	want(t, bob.do("GET", "/api/v1/me", nil), 200, "Bob after Ann's erasure")
	if n := w.env.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, bobID); n != 1 {
		t.Errorf("Bob's account went")
	}
	entries, err := rights.ReadLedgerFile(filepath.Join(w.a.Config.DataDir, "erasure-ledger.jsonl"))
	if err != nil || len(entries) != 1 {
		t.Errorf("ledger file: %v %d entries", err, len(entries))
	}
}

// undeclaredOnly reports whether a table needs a field the policy does
// not declare (so under it the table stays empty).
func undeclaredOnly(p *policy.Policy, cols []registryColumn) bool {
	for _, c := range cols {
		if c.Field != "" && p.CategoryOfField(c.Field) == "" {
			return true
		}
	}
	return false
}

// checkPortability checks the portability ZIP: index, data, schema, CSVs,
// only what the member provided, data valid against the schema, hostile
// upload names made safe.
func checkPortability(t *testing.T, w *web, z map[string][]byte, vals []seededValue) {
	t.Helper()
	checkPortabilityZIP(t, w.env, z)
	if string(z["files/passwd"]) != "root" || string(z["files/holiday.jpg"]) != "JPEG-ANN" {
		t.Errorf("uploads not in files/ under safe names: %v", keysOf(z))
	}
}

func checkPortabilityZIP(t *testing.T, e *env, z map[string][]byte) {
	t.Helper()
	for _, name := range []string{"index.html", "data.json", "data.schema.json"} {
		if _, ok := z[name]; !ok {
			t.Fatalf("portability ZIP lacks %s (has %v)", name, keysOf(z))
		}
	}
	for name := range z {
		if strings.Contains(name, "..") || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || !filepath.IsLocal(name) {
			t.Errorf("unsafe name in the ZIP: %q", name)
		}
	}
	var data struct {
		Format   string `json:"format"`
		Datasets map[string]struct {
			Rows []reportRow `json:"rows"`
		} `json:"datasets"`
	}
	if err := json.Unmarshal(z["data.json"], &data); err != nil {
		t.Fatalf("data.json: %v", err)
	}
	if data.Format != rights.PortabilityFormat {
		t.Errorf("format %q", data.Format)
	}
	// Only provided data: never sessions, mail, activity or audit.
	for name := range data.Datasets {
		var table string
		for _, tab := range e.reg.Personal() {
			if tab.Dataset == name {
				table = tab.Name
				if tab.Origin != "provided" {
					t.Errorf("portability carries %s, which is %s", name, tab.Origin)
				}
			}
		}
		if table == "" {
			t.Errorf("unknown dataset %s", name)
		}
		body, ok := z[name+".csv"]
		if !ok {
			t.Errorf("no CSV for %s", name)
			continue
		}
		// Each column is named once: the row's source and policy version
		// are not repeated from the table's own columns.
		hdr, err := csv.NewReader(bytes.NewReader(body)).Read()
		if err != nil {
			t.Errorf("%s.csv: %v", name, err)
		}
		seen := map[string]bool{}
		for _, h := range hdr {
			if seen[h] {
				t.Errorf("%s.csv names column %q twice: %v", name, h, hdr)
			}
			seen[h] = true
		}
	}
	if _, ok := data.Datasets["account"]; !ok {
		t.Errorf("the account is not in the portability export")
	}
	if _, ok := data.Datasets["consent_records"]; !ok {
		t.Errorf("consent records are not in the portability export")
	}
	if strings.Contains(string(z["data.json"]), "ANN-accounts-password") {
		t.Errorf("a password hash went into the portability export")
	}
	validateSchema(t, z["data.schema.json"], z["data.json"])
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

var _ = url.PathEscape

type registryColumn = registry.Column

// validateSchema validates data against the JSON Schema (2020-12) that
// came with it, with an independent validator.
func validateSchema(t *testing.T, schema, data []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatalf("data.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("data.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("data.schema.json")
	if err != nil {
		t.Fatalf("compile data.schema.json: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("data.json does not match data.schema.json: %v", err)
	}
}
