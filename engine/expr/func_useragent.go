package expr

import (
	"strings"

	"github.com/mssola/useragent"

	"github.com/tally-db/tally/siddhiql"
)

// env:getUserAgentProperty(ua, 'os'|'browser'|'device') parses a User-Agent header
// (github.com/mssola/useragent) and answers the family names Siddhi's ua-parser gives
// for common agents: os "Windows", "Mac OS X", "iOS", "Android", "Ubuntu", "Linux";
// browser "Chrome", "Firefox", "Safari", "IE", "Edge", "Mobile Safari", "Chrome Mobile";
// device "iPhone", "iPad", "Mac", an Android model, else "Other". Rare agents may be
// named differently than ua-parser names them; anything unknown is "Other".
func init() {
	register("env:getUserAgentProperty", fn{min: 2, max: 2, build: buildUserAgent})
}

func buildUserAgent(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := strArgs(c, args, 0); err != nil {
		return nil, err
	}
	prop, err := constString(c, args, 1, "the property")
	if err != nil {
		return nil, err
	}
	var get func(*useragent.UserAgent) string
	switch strings.ToLower(prop) {
	case "os":
		get = uaOS
	case "browser":
		get = uaBrowser
	case "device":
		get = uaDevice
	default:
		return nil, Errorf(c.Args[1], "env:getUserAgentProperty(): unknown property %q: use 'os', 'browser' or 'device'", prop)
	}
	a := args[0].Eval
	return result(siddhiql.TypeString, func(r Row) Value {
		v := a(r)
		if v.IsNull() {
			return Null
		}
		s := get(useragent.New(v.S))
		if s == "" {
			s = "Other"
		}
		return String(s)
	})
}

func uaOS(ua *useragent.UserAgent) string {
	switch n := ua.OSInfo().Name; n {
	case "iPhone OS", "CPU OS":
		return "iOS"
	default:
		return n
	}
}

func uaBrowser(ua *useragent.UserAgent) string {
	name, _ := ua.Browser()
	switch {
	case name == "Internet Explorer":
		return "IE"
	case ua.Mobile() && name == "Safari":
		return "Mobile Safari"
	case ua.Mobile() && name == "Chrome":
		return "Chrome Mobile"
	case ua.Mobile() && name == "Firefox":
		return "Firefox Mobile"
	}
	return name
}

func uaDevice(ua *useragent.UserAgent) string {
	switch p := ua.Platform(); p {
	case "iPhone", "iPad", "iPod":
		return p
	case "Macintosh":
		return "Mac"
	}
	if m := ua.Model(); m != "" && ua.OSInfo().Name == "Android" {
		return m
	}
	return ""
}
