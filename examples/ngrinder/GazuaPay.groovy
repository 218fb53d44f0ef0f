// nGrinder script (Groovy) for Gazua PAY: every request sets its own Gazua directives.
//
// In nGrinder: Script > Create > Groovy, paste this file, set the target host in
// GAZUA_BASE_URL below (or pass -Dgazua.baseUrl=... in the test's JVM arguments).
// Uses the HTTP client of nGrinder 3.5+ (org.ngrinder.http), which takes per-call headers as
// a Map. Note: per-call headers REPLACE the request's default headers, so each call passes
// the full set.
import static net.grinder.script.Grinder.grinder
import static org.hamcrest.Matchers.*
import static org.junit.Assert.assertThat

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import net.grinder.script.GTest
import net.grinder.scriptengine.groovy.junit.GrinderRunner
import net.grinder.scriptengine.groovy.junit.annotation.BeforeProcess
import net.grinder.scriptengine.groovy.junit.annotation.BeforeThread
import org.junit.Test
import org.junit.runner.RunWith
import org.ngrinder.http.HTTPRequest
import org.ngrinder.http.HTTPResponse

@RunWith(GrinderRunner)
class TestRunner {

    public static final String GAZUA_BASE_URL = System.getProperty("gazua.baseUrl", "http://gazua-pay.internal:8080")
    // Asked per request; Gazua answers each one accordingly and says so in X-Gazua-Decision.
    public static final String OUTCOME_MIX = "80% approved, 20% declined"
    public static final String LATENCY = "lognormal(p50=80ms, p99=400ms)"

    public static GTest confirmTest
    public static GTest inquiryTest
    public static HTTPRequest request

    @BeforeProcess
    public static void beforeProcess() {
        confirmTest = new GTest(1, "POST /v1/payments/confirm")
        inquiryTest = new GTest(2, "GET /v1/payments/orders/{orderId}")
        request = new HTTPRequest()
        grinder.logger.info("Gazua PAY at ${GAZUA_BASE_URL}")
    }

    @BeforeThread
    public void beforeThread() {
        confirmTest.record(this, "confirm")
        inquiryTest.record(this, "inquiry")
        grinder.statistics.delayReports = true
    }

    static Map<String, String> decision(HTTPResponse res) {
        Map<String, String> out = [:]
        String header = res.getHeader("X-Gazua-Decision") ?: ""
        header.split(";").each { part ->
            int i = part.indexOf("=")
            if (i > 0) out[part.substring(0, i).trim()] = part.substring(i + 1).trim()
        }
        return out
    }

    String orderId
    // A confirm whose answer is what Gazua decided (approved -> 200 DONE, declined -> 4xx with
    // a PG code) is a success, even when declined: that is the answer the test asked for.
    public void confirm() {
        orderId = "ngr-" + UUID.randomUUID().toString()
        Map<String, String> headers = [
            "Content-Type"   : "application/json",
            "X-Gazua-Outcome": OUTCOME_MIX,
            "X-Gazua-Latency": LATENCY,
        ]
        byte[] body = JsonOutput.toJson([paymentKey: "tgen_" + orderId, orderId: orderId, amount: 15000]).getBytes("UTF-8")
        HTTPResponse res = request.POST(GAZUA_BASE_URL + "/v1/payments/confirm", body, headers)
        String outcome = (decision(res).outcome ?: "none").split("\\(")[0]
        def json = new JsonSlurper().parseText(res.getBodyText() ?: "{}")
        if (outcome == "approved") {
            assertThat(res.statusCode, is(200))
            assertThat(json.status, is("DONE"))
        } else {
            assertThat(res.statusCode, greaterThanOrEqualTo(400))
            assertThat(json.code, notNullValue())
        }
    }

    // Same X-Gazua-Key + same server --seed = same decision on every Gazua instance.
    public void inquiry() {
        Map<String, String> headers = ["X-Gazua-Latency": "uniform(5ms, 20ms)", "X-Gazua-Key": orderId]
        HTTPResponse res = request.GET(GAZUA_BASE_URL + "/v1/payments/orders/" + orderId, [:], headers)
        assertThat(res.statusCode, anyOf(is(200), is(404)))
    }

    @Test
    public void test() {
        confirm()
        inquiry()
    }
}
