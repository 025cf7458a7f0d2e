package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"steward/internal/identity"
)

// view is what every page template receives: the layout's needs (site
// name, the signed-in account for the navigation, a status notice, form
// errors) and the page's own Data.
type view struct {
	Title string
	Site  string
	// Description is the page's meta description: what the page is for,
	// for search engines and link previews.
	Description string
	// MailHeld says no mail relay is configured: pages that promise a
	// message say where it waits instead.
	MailHeld bool
	Account  *identity.Account
	Staff    bool
	Notice   string
	Errors   map[string]string // field name → message; "" for the whole form
	Data     any
}

// formField describes one input of a form, filled in by the handler and
// drawn by the layout's "field" template with its label and error.
type formField struct {
	Name, Label, Type, Value, Autocomplete, Hint, Error string
	Required                                            bool
}

func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"seconds": func(ms int64) string { return (time.Duration(ms) * time.Millisecond).Round(time.Second).String() },
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2 January 2006")
		},
		"datetime": func(v any) string {
			var t time.Time
			switch x := v.(type) {
			case time.Time:
				t = x
			case *time.Time:
				if x == nil {
					return ""
				}
				t = *x
			}
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
}

// parsePages parses every page template once, each together with the
// layout, so pages can define the same block names.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: list templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(templateFuncs()).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// newView starts a page's view for the (possibly anonymous) visitor.
func (s *server) newView(title string, a *auth) *view {
	v := &view{Title: title, Site: s.siteName(), Errors: map[string]string{},
		Description: title + " — " + s.siteName() + ", whose personal data is kept under a published privacy policy that the software enforces.",
		MailHeld:    !s.d.Outbox.Configured()}
	if a != nil {
		acct := a.P.Account
		v.Account = &acct
		v.Staff = identity.HasRole(acct, staffRoles...)
	}
	return v
}

func (s *server) siteName() string {
	if n := s.d.Policy.Policy.Controller.Name; n != "" {
		return n
	}
	return "Steward"
}

// render executes a page into a buffer first, so a template error is
// returned before anything was written and becomes a clean error page
// instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) error {
	t, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("web: no page template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("web: render page %s: %w", page, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

// errorPage is the HTML twin of problemJSON: same status and message,
// drawn as a page. It is the one place that writes an HTML error.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	if s.clientGone(w, r, err) {
		return
	}
	p := problemOf(err)
	p.Instance = infoOf(r).id
	s.logFailure(r, p, err)
	setProblemHeaders(w, p, err)
	v := s.newView(p.Title, nil)
	v.Data = p
	if rerr := s.render(w, r, p.Status, "error", v); rerr != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "web: render error page",
			slog.String("request_id", p.Instance), slog.String("error", rerr.Error()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(p.Status)
		fmt.Fprintf(w, "%s. Request id: %s\n", p.Title, p.Instance)
	}
}

// message renders a short page that tells the visitor what happened.
func (s *server) message(w http.ResponseWriter, r *http.Request, status int, title, text string, link *pageLink) error {
	v := s.newView(title, s.optionalAuth(r))
	v.Data = struct {
		Text string
		Link *pageLink
	}{text, link}
	return s.render(w, r, status, "message", v)
}

type pageLink struct{ Href, Text string }

// labelOf gives a form label for a policy field name.
func labelOf(field string) string {
	switch field {
	case "name":
		return "Name"
	case "email":
		return "Email address"
	case "password":
		return "Password"
	case "phone":
		return "Phone number"
	case "company":
		return "Company"
	case "organisation":
		return "Organisation"
	case "billing_address":
		return "Billing address"
	case "location":
		return "Country or city"
	case "date_of_birth":
		return "Date of birth"
	default:
		return strings.ReplaceAll(field, "_", " ")
	}
}

// inputOf gives the input type and autocomplete token of a field.
func inputOf(field string) (typ, autocomplete string) {
	switch field {
	case "name":
		return "text", "name"
	case "email":
		return "email", "email"
	case "phone":
		return "tel", "tel"
	case "company", "organisation":
		return "text", "organization"
	case "billing_address":
		return "textarea", "street-address"
	case "location":
		return "text", "country-name"
	case "date_of_birth":
		return "date", "bday"
	default:
		return "text", ""
	}
}

// fieldFor builds a form field for a policy field.
func fieldFor(name, value string, required bool, errs map[string]string) formField {
	typ, ac := inputOf(name)
	f := formField{Name: name, Label: labelOf(name), Type: typ, Value: value, Autocomplete: ac, Required: required, Error: errs[name]}
	if name == "date_of_birth" {
		f.Hint = "As YYYY-MM-DD."
	}
	return f
}

func passwordField(name, label, autocomplete, hint string, errs map[string]string) formField {
	return formField{Name: name, Label: label, Type: "password", Autocomplete: autocomplete, Hint: hint, Required: true, Error: errs[name]}
}
