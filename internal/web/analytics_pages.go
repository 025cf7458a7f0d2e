package web

import (
	"html/template"
	"net/http"
	"steward/internal/analytics"
)

type analyticsSection struct {
	Name, Title, Column string
	Rows                []analytics.Row
	Chart               template.HTML
}

type analyticsData struct {
	Sites    []string
	Report   *analytics.Report
	Chart    template.HTML
	Sections []analyticsSection
}

// analyticsSections are the dimension reports the console shows, in order.
var analyticsSections = []struct{ name, title, column string }{
	{"pages", "Pages", "Path"},
	{"referrers", "Referrers", "Source"},
	{"search-terms", "Search terms", "Terms"},
	{"campaigns", "Campaigns", "utm_campaign"},
	{"countries", "Countries", "Country"},
	{"regions", "Regions", "Region"},
	{"cities", "Cities", "City"},
	{"browsers", "Browsers", "Browser"},
	{"systems", "Operating systems", "System"},
	{"screens", "Screen sizes", "Class"},
	{"outbound", "Exit links", "Link"},
	{"downloads", "Downloads", "File"},
	{"events", "Custom events", "Event"},
}

// pageAnalytics is the console page /admin/analytics (analyst, admin):
// the time series and every dimension report with SVG charts drawn here,
// so the page needs no JavaScript.
func (s *server) pageAnalytics() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		q, qerr := reportQuery(r)
		if qerr != nil {
			return qerr
		}
		q.Limit = 0
		if q.Site == "" && len(s.d.Activity.Sites()) > 0 {
			q.Site = s.d.Activity.Sites()[0].ID
		}
		d := analyticsData{}
		for _, st := range s.d.Activity.Sites() {
			d.Sites = append(d.Sites, st.ID)
		}
		series, rerr := s.d.Analytics.Report(r.Context(), analytics.Timeseries, q)
		if rerr != nil {
			return rerr
		}
		d.Report = series
		d.Chart = analytics.LineChart("Page views and visitors", series.Points, series.Interval == "hour")
		dq := q
		dq.Interval, dq.Limit = "", 25
		for _, sec := range analyticsSections {
			rep, err := s.d.Analytics.Report(r.Context(), sec.name, dq)
			if err != nil {
				return err
			}
			d.Sections = append(d.Sections, analyticsSection{Name: sec.name, Title: sec.title, Column: sec.column,
				Rows: rep.Rows, Chart: analytics.BarChart(sec.title, rep.Rows, 10)})
		}
		v := s.newView("Analytics", &a)
		v.Data = d
		return s.render(w, r, http.StatusOK, "analytics", v)
	}
}
