package email

import (
	"strings"
	"time"
)

// dateLayouts are how people of a few common locales write a date and a time, as Go
// layouts. Only digits and, for English, month abbreviations: the rest of the message
// is English, and month names in other languages would need a translation table
// rather than a layout. A profile has no time zone, so every date is in UTC and says
// so. Lookup is by the full tag, then by its language.
var dateLayouts = map[string]string{
	"en":    "Jan 2, 2006, 3:04 PM",
	"en-gb": "2 Jan 2006, 15:04",
	"en-au": "2 Jan 2006, 15:04",
	"en-in": "2 Jan 2006, 15:04",
	"de":    "02.01.2006, 15:04",
	"es":    "02/01/2006, 15:04",
	"fr":    "02/01/2006 15:04",
	"it":    "02/01/2006, 15:04",
	"nl":    "02-01-2006 15:04",
	"pl":    "02.01.2006, 15:04",
	"pt":    "02/01/2006, 15:04",
	"ru":    "02.01.2006, 15:04",
	"tr":    "02.01.2006 15:04",
	"uk":    "02.01.2006, 15:04",
	"id":    "02/01/2006 15.04",
	"ja":    "2006/01/02 15:04",
	"ko":    "2006. 1. 2. 15:04",
	"zh":    "2006/01/02 15:04",
}

// defaultLayout is ISO 8601's order, which nobody misreads.
const defaultLayout = "2006-01-02 15:04"

// formatDate writes t in UTC the way locale (a BCP 47 tag such as pt-BR) writes
// dates; an empty or unknown locale gets the ISO order.
func formatDate(t time.Time, locale string) string {
	return t.UTC().Format(dateLayout(locale)) + " UTC"
}

func dateLayout(locale string) string {
	tag := strings.ToLower(locale)
	if l, ok := dateLayouts[tag]; ok {
		return l
	}
	lang, _, _ := strings.Cut(tag, "-")
	if l, ok := dateLayouts[lang]; ok {
		return l
	}
	return defaultLayout
}
