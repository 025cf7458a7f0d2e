package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"steward/internal/disclosure"
	"steward/internal/policy"
	"steward/internal/rights"
)

// option is one choice of a form.
type option struct {
	Value, Label, Hint string
}

// privacyCentreData is what /account/privacy draws.
type privacyCentreData struct {
	Summary     rights.Summary
	Requests    []requestJSON
	Keeps       []rights.TableOutcome
	Fields      []option
	Categories  []option
	Purposes    []option
	Restricted  bool
	Offers      map[string]bool
	ReauthHint  string
	Form        map[string]string
	Exemptions  []string
	MinimumAge  int
	DeleteScope []option
}

func (s *server) privacyOptions() (fields, cats, purposes []option) {
	p := s.d.Policy.Policy
	for _, c := range p.Categories() {
		cats = append(cats, option{Value: c.ID, Label: c.ID, Hint: c.Description})
		for _, f := range c.Fields {
			if f == "password" || f == "session" || p.SelfEditable(f) {
				continue
			}
			fields = append(fields, option{Value: f, Label: labelOf(f), Hint: c.ID})
		}
	}
	purposes = append(purposes, option{Value: policy.DirectMarketing, Label: "All direct marketing",
		Hint: "Stops at once and cannot be refused."})
	for _, pu := range p.Purposes() {
		if pu.Builtin {
			continue
		}
		switch {
		case pu.DirectMarketing:
			purposes = append(purposes, option{Value: pu.ID, Label: pu.ID, Hint: pu.Description + " (direct marketing: stops at once)"})
		case pu.Basis == policy.BasisLegitimateInterest || pu.Basis == policy.BasisPublicTask:
			purposes = append(purposes, option{Value: pu.ID, Label: pu.ID, Hint: pu.Description})
		}
	}
	return fields, cats, purposes
}

func privacyNotice(done string) string {
	switch done {
	case "":
		return ""
	case "access", "portability":
		return "We are preparing your copy. It appears below when it is ready, usually within a minute."
	case "erasure":
		return "Your erasure request was received. We mail you when it is done."
	default:
		return "Your " + done + " request was received. Its status and due date are below."
	}
}

func (s *server) renderPrivacyCentre(w http.ResponseWriter, r *http.Request, a auth, status int, errs map[string]string, form map[string]string) error {
	ctx := r.Context()
	subjectID := a.P.Account.SubjectID
	sum, err := s.d.Rights.Summarize(ctx, subjectID)
	if err != nil {
		return err
	}
	list, err := s.d.Rights.List(ctx, subjectID)
	if err != nil {
		return err
	}
	keeps, err := s.d.Rights.Keeps(ctx, subjectID)
	if err != nil {
		return err
	}
	d := privacyCentreData{Summary: sum, Keeps: keeps, Form: form, MinimumAge: s.d.Policy.Policy.MinimumAge, Offers: map[string]bool{},
		ReauthHint: "Your password, to confirm it is you."}
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	for _, t := range rights.Types() {
		d.Offers[string(t)] = s.d.Policy.Policy.Offers(string(t))
	}
	d.Fields, d.Categories, d.Purposes = s.privacyOptions()
	for _, req := range list {
		d.Requests = append(d.Requests, s.requestOut(req, "/account/privacy/requests/"+req.ID+"/download"))
	}
	d.Restricted = sum.Restricted
	if er := s.d.Policy.Policy.Rights.Erasure; er != nil {
		for _, e := range er.Exemptions {
			d.Exemptions = append(d.Exemptions, string(e))
		}
	}
	v := s.newView("Your privacy", &a)
	if errs != nil {
		v.Errors = errs
	}
	v.Notice = privacyNotice(r.URL.Query().Get("done"))
	v.Data = d
	return s.render(w, r, status, "privacy_centre", v)
}

func (s *server) pagePrivacyCentre() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderPrivacyCentre(w, r, a, http.StatusOK, nil, nil)
	}
}

// requestFromForm reads a privacy-centre form into a request body.
func requestFromForm(f url.Values) requestBody {
	b := requestBody{
		Type: f.Get("type"), Scope: f.Get("scope"), Reason: f.Get("reason"), Password: f.Get("password"),
		Purposes: nonEmpty(f["purposes"]), Fields: nonEmpty(f["fields"]), Categories: nonEmpty(f["categories"]), Items: nonEmpty(f["items"]),
		Restrict: f.Get("restrict") != "", Lift: f.Get("lift") != "",
	}
	if field := f.Get("field"); field != "" {
		b.Fields = append(b.Fields, field)
		if v := f.Get("value"); v != "" {
			b.Corrections = map[string]string{field: v}
		}
	}
	return b
}

func nonEmpty(list []string) []string {
	var out []string
	for _, v := range list {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (s *server) pagePrivacyRequestPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		b := requestFromForm(r.PostForm)
		form := map[string]string{"type": b.Type, "reason": b.Reason, "field": r.PostForm.Get("field"), "value": r.PostForm.Get("value")}
		if b.Type == string(rights.Erasure) && r.PostForm.Get("confirm") == "" {
			return s.renderPrivacyCentre(w, r, a, http.StatusUnprocessableEntity,
				map[string]string{"confirm": "Tick the box to confirm you want your data erased."}, form)
		}
		req, err := s.fileMine(r, a, b)
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderPrivacyCentre(w, r, a, status, errs, form)
			})
		}
		if req.Type == rights.Erasure && (req.Scope == "" || req.Scope == string(policy.ScopeAccount)) {
			// The account, and this session with it, may be gone by the
			// time a redirect comes back: confirm here instead.
			return s.message(w, r, http.StatusOK, "Erasure requested",
				"Your request to erase your account was received (reference "+req.ID+"). We mail you when it is done; "+
					"from then on you are signed out everywhere.",
				&pageLink{Href: "/", Text: "Back to the home page"})
		}
		http.Redirect(w, r, "/account/privacy?done="+url.QueryEscape(b.Type), http.StatusSeeOther)
		return nil
	}
}

// adminQueueData is what /admin/requests draws.
type adminQueueData struct {
	Requests []staffRequestJSON
	Overdue  int
	All      bool
}

func (s *server) pageAdminRequests() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		all := r.URL.Query().Get("all") != ""
		list, err := s.d.Rights.Queue(r.Context(), staffReader(a), all, 500)
		if err != nil {
			return err
		}
		d := adminQueueData{All: all}
		for _, req := range list {
			j := s.staffRequestOut(req)
			if j.Overdue {
				d.Overdue++
			}
			d.Requests = append(d.Requests, j)
		}
		v := s.newView("Rights requests", &a)
		v.Notice = adminNotice(r.URL.Query().Get("done"))
		v.Data = d
		return s.render(w, r, http.StatusOK, "admin_requests", v)
	}
}

func adminNotice(done string) string {
	switch done {
	case "approve":
		return "The request was approved."
	case "refuse":
		return "The request was refused; the person was told why."
	case "extend":
		return "The deadline was extended; the person was told why."
	case "under-age":
		return "The account is being erased."
	}
	return ""
}

func (s *server) renderAdminRequest(w http.ResponseWriter, r *http.Request, a auth, id string, status int, errs map[string]string) error {
	req, err := s.d.Rights.Review(r.Context(), staffReader(a), id)
	if err != nil {
		return err
	}
	v := s.newView("Request "+req.ID, &a)
	if errs != nil {
		v.Errors = errs
	}
	v.Notice = adminNotice(r.URL.Query().Get("done"))
	told, err := s.d.Disclosure.Told(r.Context(), req.ID)
	if err != nil {
		return err
	}
	v.Data = struct {
		R              staffRequestJSON
		CanExtend      bool
		FirstMonthEnds string
		Params         string
		Told           []disclosure.Delivery
	}{s.staffRequestOut(req), !req.Status.Final() && s.d.Clock.Now().Before(req.FirstMonthEnds()) && req.ExtendedMonths < 2,
		req.FirstMonthEnds().Format("2 January 2006"), paramsText(req.Params), told}
	return s.render(w, r, status, "admin_requests_detail", v)
}

func paramsText(p rights.Params) string {
	var parts []string
	add := func(name string, list []string) {
		if len(list) > 0 {
			parts = append(parts, name+": "+strings.Join(list, ", "))
		}
	}
	add("purposes", p.Purposes)
	add("fields", p.Fields)
	add("categories", p.Categories)
	add("items", p.Items)
	if p.Restrict {
		parts = append(parts, "restrict while assessed")
	}
	if p.Lift {
		parts = append(parts, "lift the restriction")
	}
	if p.UnderAge {
		parts = append(parts, "under the minimum age")
	}
	return strings.Join(parts, "; ")
}

func (s *server) pageAdminRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderAdminRequest(w, r, a, r.PathValue("id"), http.StatusOK, nil)
	}
}

func (s *server) pageAdminDecisionPost(action string) authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		id := r.PathValue("id")
		b := decisionBody{Note: r.PostForm.Get("note"), Reason: r.PostForm.Get("reason")}
		if m := r.PostForm.Get("months"); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil {
				return badRequest("months", "months must be 1 or 2", err)
			}
			b.Months = n
		}
		if _, err := s.decide(r, a, action, id, b); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderAdminRequest(w, r, a, id, status, errs)
			})
		}
		http.Redirect(w, r, "/admin/requests/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageUnderAgePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		req, err := s.d.Rights.MarkUnderAge(r.Context(), a.P.Account.SubjectID, strings.TrimSpace(r.PostForm.Get("subject_id")), r.PostForm.Get("note"))
		if err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/requests/"+url.PathEscape(req.ID)+"?done=under-age", http.StatusSeeOther)
		return nil
	}
}

// Pages for people without an account: file by email, confirm with the
// mailed code, then follow and download with the key shown once.

type publicRequestData struct {
	Types    []option
	Form     map[string]string
	Request  *requestJSON
	Token    string
	Download bool
}

func (s *server) publicTypes() []option {
	var out []option
	for _, t := range rights.Types() {
		if s.d.Policy.Policy.Offers(string(t)) {
			out = append(out, option{Value: string(t), Label: string(t)})
		}
	}
	return out
}

func (s *server) renderPublicRequest(w http.ResponseWriter, r *http.Request, status int, page string, d publicRequestData, errs map[string]string) error {
	d.Types = s.publicTypes()
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	v := s.newView("Ask about your data", s.optionalAuth(r))
	if errs != nil {
		v.Errors = errs
	}
	v.Data = d
	return s.render(w, r, status, page, v)
}

func (s *server) pagePublicRequest() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.renderPublicRequest(w, r, http.StatusOK, "rights_request", publicRequestData{}, nil)
	}
}

func (s *server) pagePublicRequestPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		b := requestFromForm(r.PostForm)
		b.Password = ""
		form := map[string]string{"email": r.PostForm.Get("email"), "type": b.Type, "reason": b.Reason}
		req, err := s.d.Rights.FileByEmail(r.Context(), r.PostForm.Get("email"), b.filing(), infoOf(r).client.IP)
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderPublicRequest(w, r, status, "rights_request", publicRequestData{Form: form}, errs)
			})
		}
		out := s.requestOut(req, "")
		out.Status = string(rights.StatusReceived) // the same answer for every address
		return s.renderPublicRequest(w, r, http.StatusOK, "rights_verify", publicRequestData{Request: &out}, nil)
	}
}

func (s *server) pagePublicVerifyPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		id := r.PathValue("id")
		req, token, err := s.d.Rights.VerifyCode(r.Context(), id, strings.TrimSpace(r.PostForm.Get("code")))
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderPublicRequest(w, r, status, "rights_verify", publicRequestData{Request: &requestJSON{ID: id}}, errs)
			})
		}
		out := s.requestOut(req, "")
		return s.renderPublicRequest(w, r, http.StatusOK, "rights_status", publicRequestData{Request: &out, Token: token}, nil)
	}
}

// pagePublicStatusPost shows an emailed request's status to the bearer of
// its key (sent in the form body, never in a URL).
func (s *server) pagePublicStatusPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		token := r.PostForm.Get("token")
		req, err := s.d.Rights.ByToken(r.Context(), r.PathValue("id"), token)
		if err != nil {
			return err
		}
		out := s.requestOut(req, "")
		s.renderPublicRequest(w, r, http.StatusOK, "rights_status", publicRequestData{Request: &out, Token: token,
			Download: out.Status == string(rights.StatusCompleted) && (req.Type == rights.Access || req.Type == rights.Portability)}, nil)
		return nil
	}
}

func (s *server) pagePublicDownloadPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		ex, err := s.d.Rights.DownloadByToken(r.Context(), r.PathValue("id"), r.PostForm.Get("token"))
		if err != nil {
			return err
		}
		sendExport(w, ex)
		return nil
	}
}
