package expr

import "github.com/tally-db/tally/siddhiql"

// geo:findCountryFromIP and geo:findCityFromIP look an IP up in the node's GeoIP
// database (Env.GeoIP); without one, or for an unknown address, they answer "" as the
// API-M apps expect.
func init() {
	register("geo:findCountryFromIP", fn{min: 1, max: 1, live: true, build: func(c *siddhiql.Call, args []*Compiled, env *Env) (*Compiled, error) {
		return buildGeo(c, args, env, GeoIP.Country)
	}})
	register("geo:findCityFromIP", fn{min: 1, max: 1, live: true, build: func(c *siddhiql.Call, args []*Compiled, env *Env) (*Compiled, error) {
		return buildGeo(c, args, env, GeoIP.City)
	}})
}

func buildGeo(c *siddhiql.Call, args []*Compiled, env *Env, look func(GeoIP, string) string) (*Compiled, error) {
	if err := strArgs(c, args, 0); err != nil {
		return nil, err
	}
	a := args[0].Eval
	return &Compiled{Type: siddhiql.TypeString, Eval: func(r Row) Value {
		v := a(r)
		if v.IsNull() || env == nil || env.GeoIP == nil {
			return String("")
		}
		return String(look(env.GeoIP, v.S))
	}}, nil
}
