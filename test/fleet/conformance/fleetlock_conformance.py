#!/usr/bin/env python3
"""FleetLock conformance checker: runs named cases against any FleetLock server.

Written from the protocol spec only, independent of any server's code:
  * Zincati, docs/development/fleetlock/protocol.md
    https://coreos.github.io/zincati/development/fleetlock/protocol/
    (POST {base}/v1/pre-reboot = RecursiveLock, POST {base}/v1/steady-state = UnlockIfHeld,
    header `fleet-lock-protocol: true`, body {"client_params":{"id","group"}}, group
    ^[a-zA-Z0-9.-]+$, ids case-sensitive, 200 = success, errors {"kind","value"} non-empty strings)
  * airlock (github.com/coreos/airlock), the reference server, for what the spec leaves open:
    a missing/empty group is refused (the spec makes it mandatory; Zincati sends "default"), so a
    server may either refuse it or treat it as "default", but never as a bucket of its own.

Usage: fleetlock_conformance.py BASE_URL [--slots N] [--group G] [--other-group G2]
                                [--default-slots M] [--token-file F] [--cacert F] [--json]
The group G (N slots), G2 (at least 1 slot) and "default" (M slots, default N) must have no
holders when it starts. Ids carry a random suffix, so it can run again against the same
server; it releases every slot it took. Exit 0 when every case passes, 1 otherwise.
"""
import argparse
import json
import secrets
import ssl
import sys
import urllib.error
import urllib.request

MISSING = object()  # a body field left out


class Fail(Exception):
    pass


class Checker:
    def __init__(self, base, slots, group, other_group, default_slots, token=None, cacert=None, timeout=20.0):
        self.base = base.rstrip("/")
        # Not part of FleetLock: for servers that add bearer tokens or TLS with a CA of their own.
        self.auth = {"authorization": "Bearer " + token} if token else {}
        self.tls = ssl.create_default_context(cafile=cacert) if cacert else None
        self.slots, self.group, self.other, self.default_slots = slots, group, other_group, default_slots
        self.timeout = timeout
        self.tag = secrets.token_hex(4)
        self.n = 0
        self.held = set()  # (id, group) this run was granted and has not released
        self.results = []

    # --- the wire -----------------------------------------------------------------------------
    def fresh(self, name):
        self.n += 1
        return "conf-%s-%s%d" % (self.tag, name, self.n)

    def raw(self, endpoint, body, header="true", content_type="application/json"):
        """POST; returns (status, parsed JSON or None, text). `header` None leaves it out."""
        headers = {"content-type": content_type, **self.auth}
        if header is not None:
            headers["fleet-lock-protocol"] = header
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + "/v1/" + endpoint, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.tls) as res:
                status, text = res.status, res.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as err:
            raise Fail("%s: no answer: %s" % (endpoint, err))
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        return status, doc, text

    @staticmethod
    def body(id_, group):
        params = {}
        if id_ is not MISSING:
            params["id"] = id_
        if group is not MISSING:
            params["group"] = group
        return {"client_params": params}

    def call(self, endpoint, id_, group):
        status, doc, text = self.raw(endpoint, self.body(id_, group))
        key = (id_, None if group is MISSING else group)  # released again exactly as it was sent
        if status == 200:
            (self.held.add if endpoint == "pre-reboot" else self.held.discard)(key)
        elif not is_error(doc):
            raise Fail("%s id=%s: HTTP %d without a {kind, value} body: %.120r" % (endpoint, id_, status, text))
        return status

    def lock(self, id_, group):
        return self.call("pre-reboot", id_, group) == 200

    def must_lock(self, id_, group, why):
        if not self.lock(id_, group):
            raise Fail("pre-reboot id=%s group=%s refused: %s" % (id_, show(group), why))

    def must_refuse(self, id_, group, why):
        if self.lock(id_, group):
            raise Fail("pre-reboot id=%s group=%s granted: %s" % (id_, show(group), why))

    def must_release(self, id_, group, why=""):
        if self.call("steady-state", id_, group) != 200:
            raise Fail("steady-state id=%s group=%s not 200 %s" % (id_, show(group), why))

    def refused(self, what, body, header="true", holder=None):
        """Both endpoints must answer non-200 with a {kind, value} body. `holder`: the (id, group)
        a wrongly granted request may have locked, released at the end."""
        for endpoint in ("pre-reboot", "steady-state"):
            status, doc, text = self.raw(endpoint, body, header)
            if status == 200:
                if holder and endpoint == "pre-reboot":
                    self.held.add(holder)
                raise Fail("%s: %s answered 200" % (what, endpoint))
            if not is_error(doc):
                raise Fail("%s: %s HTTP %d, body not {kind, value}: %.120r" % (what, endpoint, status, text))

    # --- the cases ----------------------------------------------------------------------------
    def case(self, name, fn, needs=None):
        if needs is not None and not self.passed(needs):
            self.results.append((name, False, "not run: needs case %s" % needs))
            return
        try:
            note = fn()
            self.results.append((name, True, note if isinstance(note, str) else "ok"))
        except Fail as err:
            self.results.append((name, False, str(err)))

    def passed(self, name):
        return any(n == name and ok for n, ok, _ in self.results)

    def run(self):
        g, b = self.group, self.body
        i = self.fresh("bad")
        self.case("header-missing-refused", lambda: self.refused("no fleet-lock-protocol header", b(i, g), header=None, holder=(i, g)))
        self.case("header-false-refused", lambda: self.refused("fleet-lock-protocol: false", b(i, g), header="false", holder=(i, g)))
        self.case("malformed-json-refused", lambda: self.refused("truncated JSON", b'{"client_params": {"id": "x"'))
        self.case("missing-client-params-refused", lambda: self.refused("no client_params", {"id": i, "group": g}, holder=(i, g)))
        self.case("missing-id-refused", lambda: [self.refused("id %s" % d, b(v, g)) for d, v in
                                                 (("missing", MISSING), ("empty", ""), ("a number", 5), ("null", None))])
        self.case("bad-group-refused", lambda: [self.refused("group %r" % v, b(i, v)) for v in
                                                ("a/b", "a_b", "two words", "../x", "gr\u00fcn", 5)])
        self.case("group-missing-or-empty-is-default-or-refused", self.default_group)
        self.case("spec-example-request-granted", self.spec_example)
        self.case("pre-reboot-grants-up-to-slots", self.fill)
        self.case("holder-relock-granted", self.relock, needs="pre-reboot-grants-up-to-slots")
        self.case("id-case-sensitive", self.case_sensitive, needs="pre-reboot-grants-up-to-slots")
        self.case("non-holder-release-harmless", self.non_holder, needs="pre-reboot-grants-up-to-slots")
        self.case("holder-release-frees-slot", self.release_frees, needs="pre-reboot-grants-up-to-slots")
        self.case("groups-independent", self.groups, needs="pre-reboot-grants-up-to-slots")
        self.case("release-all", self.release_all)
        return self.results

    def default_group(self):
        """Fill "default"; then a request without group (or with "") may be refused or be the
        same lock as "default", but must not get a slot of its own."""
        ids = [self.fresh("d") for _ in range(self.default_slots)]
        for id_ in ids:
            self.must_lock(id_, "default", 'the "default" group must be free at start')
        modes = []
        for group in (MISSING, ""):
            label = "without group" if group is MISSING else 'with group ""'
            self.must_refuse(self.fresh("d"), group, 'a request %s got a slot while "default" was full' % label)
            if self.lock(ids[0], group):  # the holder of "default" asking again, without a group
                self.must_release(ids[0], group, "(the same lock as default)")
                ids[0] = self.fresh("d")
                self.must_lock(ids[0], "default", "releasing %s did not free the default slot" % label)
                modes.append('%s is "default"' % label)
            else:
                modes.append("%s is refused" % label)
        self.release_taken()
        return "; ".join(modes)

    def spec_example(self):
        """The spec's example: `curl -H "fleet-lock-protocol: true" -d @body.json`, i.e. a
        pretty-printed body sent as application/x-www-form-urlencoded (curl's -d default)."""
        id_ = self.fresh("e")
        data = json.dumps({"client_params": {"group": self.group, "id": id_}}, indent=2).encode()
        for endpoint in ("pre-reboot", "steady-state"):
            status, _, text = self.raw(endpoint, data, content_type="application/x-www-form-urlencoded")
            if status != 200:
                raise Fail("%s as in the spec's curl example: HTTP %d %.120r" % (endpoint, status, text))
            self.held.add((id_, self.group))  # released below with an ordinary request too
        self.must_release(id_, self.group)
        self.full()  # the example's release freed its slot: all N are free

    def full(self):
        """Releases what this run holds, then fills the group with fresh holders: each case that
        needs a full group starts from here, so a failure in one does not spill into the next."""
        self.release_taken()
        holders = [self.fresh("h") for _ in range(self.slots)]
        for id_ in holders:
            self.must_lock(id_, self.group, "group %s must have %d free slots at start "
                           "(was it empty? did a refused request take a slot?)" % (self.group, self.slots))
        self.must_refuse(self.fresh("x"), self.group, "all %d slots were held" % self.slots)
        return holders

    def fill(self):
        self.full()
        return "%d granted, the next refused" % self.slots

    def relock(self):
        for id_ in self.full():
            self.must_lock(id_, self.group, "a holder asking again must be granted (recursive lock)")
        self.must_refuse(self.fresh("x"), self.group, "holders asking again must not take more slots")

    def case_sensitive(self):
        holder = self.full()[0]
        twin = holder.swapcase()
        self.must_refuse(twin, self.group, "ids are case-sensitive: %s is not holder %s" % (twin, holder))
        self.must_release(twin, self.group)
        self.must_refuse(self.fresh("x"), self.group, "%s releasing freed %s's slot" % (twin, holder))

    def non_holder(self):
        self.full()
        stranger = self.fresh("s")
        self.must_release(stranger, self.group, "(a non-holder releasing must be answered 200)")
        self.must_release(stranger, self.other, "(a non-holder releasing in another group)")
        self.must_refuse(self.fresh("x"), self.group, "a non-holder's steady-state freed someone else's slot")

    def release_frees(self):
        first = self.full()[0]
        self.must_release(first, self.group, "(the holder releasing)")
        self.must_lock(self.fresh("n"), self.group, "the slot released by %s must be free" % first)
        self.must_release(first, self.group, "(releasing twice: unbalanced unlocks are allowed)")
        self.must_refuse(self.fresh("x"), self.group, "%s releasing a second time freed another slot" % first)
        self.must_refuse(first, self.group, "%s released its slot and the group is full again" % first)

    def groups(self):
        self.full()
        other = self.fresh("o")
        self.must_lock(other, self.other, "group %s is full but %s is another group" % (self.group, self.other))
        self.must_release(other, self.other)
        self.must_refuse(self.fresh("x"), self.group, "releasing in %s changed %s" % (self.other, self.group))

    def release_all(self):
        self.release_taken()
        ids = [self.fresh("r") for _ in range(self.slots)]
        for id_ in ids:
            self.must_lock(id_, self.group, "after releasing everything, all %d slots must be free" % self.slots)
        self.release_taken()
        return "released every slot this run took"

    def release_taken(self):
        for id_, group in sorted(self.held, key=repr):
            self.must_release(id_, MISSING if group is None else group, "(cleaning up)")


def show(group):
    return "(none)" if group is MISSING else json.dumps(group)


def is_error(doc):
    return (isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"] != ""
            and isinstance(doc.get("value"), str) and doc["value"] != "")


def main():
    p = argparse.ArgumentParser(description="FleetLock conformance checker (from Zincati's protocol spec)")
    p.add_argument("base_url", help="the server's base URL, e.g. http://127.0.0.1:3333")
    p.add_argument("--slots", type=int, default=1, help="slots of --group (default 1)")
    p.add_argument("--group", default="default", help="the group under test (default: default)")
    p.add_argument("--other-group", help="a second group with >= 1 slot (default: GROUP-other)")
    p.add_argument("--default-slots", type=int, help='slots of "default" (default: --slots)')
    p.add_argument("--token-file", help="send 'Authorization: Bearer <first line of this file>'")
    p.add_argument("--cacert", help="PEM CA file that signed an https server's certificate")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    a = p.parse_args()
    if a.slots < 1:
        p.error("--slots must be >= 1")
    other = a.other_group or a.group + "-other"
    token = None
    if a.token_file:
        try:
            with open(a.token_file, encoding="utf-8") as f:
                token = f.readline().strip()
        except OSError as err:
            p.error("--token-file %s: %s" % (a.token_file, err.strerror or err))
    if a.cacert:
        try:
            ssl.create_default_context(cafile=a.cacert)
        except (OSError, ssl.SSLError) as err:
            p.error("--cacert %s: %s" % (a.cacert, getattr(err, "strerror", None) or err))
    c = Checker(a.base_url, a.slots, a.group, other, a.default_slots or a.slots, token, a.cacert)
    results = c.run()
    failed = [r for r in results if not r[1]]
    if a.json:
        print(json.dumps({"base_url": a.base_url, "slots": a.slots, "group": a.group,
                          "passed": len(results) - len(failed), "failed": [r[0] for r in failed],
                          "cases": [{"name": n, "pass": ok, "reason": why} for n, ok, why in results]}, indent=2))
    else:
        for name, ok, why in results:
            print("%s %s: %s" % ("PASS" if ok else "FAIL", name, why))
        print("%d/%d cases passed" % (len(results) - len(failed), len(results)))
        if failed:
            print("FAILED: " + ", ".join(r[0] for r in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
