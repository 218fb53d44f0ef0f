// Gatling simulation (Java DSL) for Gazua PAY: every request sets its own Gazua directives.
//
//   cd examples/gatling && mvn gatling:test -Dgazua.baseUrl=http://localhost:8080
//
// Confirms ask per request for an outcome mix and a latency (X-Gazua-Outcome,
// X-Gazua-Latency); the checks compare the answer with X-Gazua-Decision (approved -> 200 DONE,
// anything else -> a 4xx/5xx carrying a PG error code). A second scenario uses a [gazua: ...]
// tag in orderName at checkout, the path of a SUT that forwards no headers.
package gazua;

import static io.gatling.javaapi.core.CoreDsl.*;
import static io.gatling.javaapi.http.HttpDsl.*;

import io.gatling.javaapi.core.*;
import io.gatling.javaapi.http.*;
import java.time.Duration;
import java.util.UUID;

public class GazuaPaySimulation extends Simulation {

  static final String BASE_URL = System.getProperty("gazua.baseUrl", "http://localhost:8080");
  static final String MIX = System.getProperty("gazua.outcomeMix", "80% approved, 20% declined");
  static final String LATENCY = System.getProperty("gazua.latency", "lognormal(p50=80ms, p99=400ms)");

  HttpProtocolBuilder protocol =
      http.baseUrl(BASE_URL).contentTypeHeader("application/json").acceptHeader("application/json");

  ChainBuilder confirm =
      exec(session -> session.set("orderId", "gtl-" + UUID.randomUUID()))
          .exec(
              http("POST /v1/payments/confirm")
                  .post("/v1/payments/confirm")
                  .header("X-Gazua-Outcome", MIX)
                  .header("X-Gazua-Latency", LATENCY)
                  .body(StringBody(
                      "{\"paymentKey\":\"tgen_#{orderId}\",\"orderId\":\"#{orderId}\",\"amount\":15000}"))
                  // A declined payment is the answer we asked for, so success = "the answer
                  // matches what Gazua says it decided" (X-Gazua-Decision), not "HTTP 200".
                  .checkIf((response, session) -> decidedApproved(response))
                  .then(status().is(200), jsonPath("$.status").is("DONE"))
                  .checkIf((response, session) -> !decidedApproved(response))
                  .then(status().in(400, 401, 403, 404, 409, 429, 500, 502, 503), jsonPath("$.code").exists()));

  static boolean decidedApproved(io.gatling.http.response.Response response) {
    String decision = response.headers().get("X-Gazua-Decision");
    return decision != null && decision.startsWith("outcome=approved");
  }

  ChainBuilder taggedCheckout =
      exec(session -> session.set("taggedOrderId", "gtl-" + UUID.randomUUID()))
          .exec(
              http("POST /v1/payments")
                  .post("/v1/payments")
                  .body(StringBody(
                      "{\"method\":\"CARD\",\"amount\":15000,\"orderId\":\"#{taggedOrderId}\","
                          + "\"orderName\":\"Gazua sneakers [gazua: outcome=declined(REJECT_CARD_PAYMENT)]\","
                          + "\"successUrl\":\"https://shop.example/success\",\"failUrl\":\"https://shop.example/fail\"}"))
                  .check(status().is(200))
                  .check(jsonPath("$.paymentKey").saveAs("paymentKey")))
          .exec(
              http("POST /v1/payments/confirm (tagged)")
                  .post("/v1/payments/confirm")
                  .body(StringBody(
                      "{\"paymentKey\":\"#{paymentKey}\",\"orderId\":\"#{taggedOrderId}\",\"amount\":15000}"))
                  .check(status().in(400, 403)));

  ScenarioBuilder shoppers = scenario("shoppers").exec(confirm);
  ScenarioBuilder tagged = scenario("tagged checkout").exec(taggedCheckout);

  {
    setUp(
            shoppers.injectOpen(
                rampUsersPerSec(10).to(300).during(Duration.ofMinutes(1)),
                constantUsersPerSec(300).during(Duration.ofMinutes(3))),
            tagged.injectOpen(constantUsersPerSec(10).during(Duration.ofMinutes(4))))
        .protocols(protocol)
        .assertions(global().failedRequests().percent().lt(0.1));
  }
}
