//! The TaskRouter fake against its contract: the adapter's tests are only as
//! good as the fake is faithful.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::taskrouter::{self as tr, Fake, Refusal};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn workspace(fake: &Fake) -> String {
    format!("{}/v1/Workspaces/{}", fake.base_url, tr::WORKSPACE_SID)
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// GET of a path under the Workspace (or an absolute URL).
async fn get(fake: &Fake, path: &str) -> (u16, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", workspace(fake))
    };
    answer(
        client()
            .get(url)
            .basic_auth(tr::ACCOUNT_SID, Some(tr::AUTH_TOKEN)),
    )
    .await
}

async fn post(fake: &Fake, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}{path}", workspace(fake));
    answer(
        client()
            .post(url)
            .basic_auth(tr::API_KEY, Some(tr::API_SECRET))
            .form(form),
    )
    .await
}

type Received = Arc<Mutex<Vec<(Option<String>, Vec<(String, String)>)>>>;

/// An event receiver on another loopback port: what it got, and its URL.
async fn receiver() -> (String, Received) {
    let got = Received::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let keep = keep.clone();
                async move {
                    let signature = headers
                        .get("x-twilio-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let params = form_urlencoded::parse(&body).into_owned().collect();
                    keep.lock().unwrap().push((signature, params));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn types(fake: &Fake) -> Vec<String> {
    fake.deliveries()
        .into_iter()
        .map(|d| d.event_type)
        .collect()
}

#[test]
fn signature_matches_twilios_published_example() {
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675310"),
        ("Digits", "1234"),
        ("From", "+14158675310"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = "https://example.com/myapp.php?foo=1&bar=2";
    assert_eq!(
        Fake::sign(url, &params, "12345"),
        "L/OH5YylLD5NRKLltdqwSvS0BnU="
    );
    let mut shuffled = params.clone();
    shuffled.reverse();
    assert_eq!(
        Fake::sign(url, &shuffled, "12345"),
        "L/OH5YylLD5NRKLltdqwSvS0BnU="
    );
}

#[test]
fn dates_are_iso_8601() {
    assert_eq!(tr::iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(tr::iso8601(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(tr::iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
}

#[tokio::test]
async fn workspace_names_its_default_and_timeout_activity() {
    let fake = Fake::start().await;
    let (status, ws) = get(&fake, "").await;
    assert_eq!(status, 200);
    assert_eq!(ws["sid"], tr::WORKSPACE_SID);
    assert_eq!(ws["friendly_name"], "hisflow test");
    assert_eq!(ws["event_callback_url"], Value::Null);
    assert_eq!(ws["default_activity_name"], "Offline");
    assert_eq!(ws["timeout_activity_sid"], fake.activity_sid("Offline"));
    fake.set_callback("https://example.com/events");
    assert_eq!(
        get(&fake, "").await.1["event_callback_url"],
        "https://example.com/events"
    );
    let other = format!("{}/v1/Workspaces/WS{:032x}", fake.base_url, 7);
    let (status, body) = get(&fake, &other).await;
    assert_eq!((status, body["code"].clone()), (404, json!(20404)));
}

#[tokio::test]
async fn lists_page_by_page_size_to_the_last_page() {
    let fake = Fake::start().await;
    let (status, first) = get(&fake, "/Activities?PageSize=2").await;
    assert_eq!(status, 200);
    assert_eq!(first["meta"]["key"], "activities");
    assert_eq!(first["meta"]["page"], 0);
    assert_eq!(first["meta"]["page_size"], 2);
    assert_eq!(first["meta"]["previous_page_url"], Value::Null);
    let mut names = Vec::new();
    let mut page = first;
    let mut pages = 0;
    loop {
        pages += 1;
        for a in page["activities"].as_array().unwrap() {
            names.push(a["friendly_name"].as_str().unwrap().to_string());
            assert!(a["sid"].as_str().unwrap().starts_with("WA"));
        }
        let Some(next) = page["meta"]["next_page_url"].as_str() else {
            break;
        };
        assert!(next.starts_with(&fake.base_url), "{next}");
        page = get(&fake, next).await.1;
        assert_ne!(page["meta"]["previous_page_url"], Value::Null);
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["Offline", "Available", "Unavailable", "Break"]);

    let (_, available) = get(&fake, "/Activities?Available=true").await;
    let available = available["activities"].as_array().unwrap().clone();
    assert_eq!(available.len(), 1);
    assert_eq!(available[0]["friendly_name"], "Available");
    let (_, channels) = get(&fake, "/TaskChannels").await;
    assert_eq!(channels["meta"]["key"], "channels");
    let names: Vec<&str> = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["unique_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "voice", "chat", "sms", "video", "email"]);
    assert_eq!(get(&fake, "/Activities?PageSize=0").await.0, 400);
}

#[tokio::test]
async fn wrong_credentials_are_401_with_twilios_body() {
    let fake = Fake::start().await;
    let url = format!("{}/Workers", workspace(&fake));
    let (status, body) = answer(
        client()
            .get(&url)
            .basic_auth(tr::ACCOUNT_SID, Some("wrong")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401})
    );
    assert_eq!(answer(client().get(&url)).await.0, 401);
    assert_eq!(
        answer(
            client()
                .get(&url)
                .basic_auth(tr::API_KEY, Some(tr::API_SECRET))
        )
        .await
        .0,
        200
    );
    let users: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.user).collect();
    assert_eq!(
        users,
        [Some(tr::ACCOUNT_SID.into()), None, Some(tr::API_KEY.into())]
    );
}

#[tokio::test]
async fn workers_are_found_by_friendly_name_and_target_expression() {
    let fake = Fake::start().await;
    let alice = fake.add_worker(
        "Alice",
        json!({"agent_id": "1001", "team": {"name": "sales"}}),
    );
    let bob = fake.add_worker("Bob", json!({"agent_id": "1002"}));
    assert!(alice.starts_with("WK") && alice.len() == 34);

    let (_, found) = get(&fake, "/Workers?FriendlyName=aLiCe").await;
    let workers = found["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["sid"], alice.as_str());
    assert_eq!(workers[0]["attributes"], Value::Null);
    assert_eq!(workers[0]["activity_name"], "Offline");

    for expression in [r#"agent_id == "1002""#, "agent_id=='1002'"] {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("TargetWorkersExpression", expression)
            .finish();
        let (status, found) = get(&fake, &format!("/Workers?{q}")).await;
        assert_eq!(status, 200, "{expression}");
        let sids: Vec<&str> = found["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, [bob.as_str()], "{expression}");
    }
    let (_, sales) = get(
        &fake,
        "/Workers?TargetWorkersExpression=team.name%3D%3D%22sales%22",
    )
    .await;
    assert_eq!(sales["workers"][0]["sid"], alice.as_str());
    let (status, error) = get(
        &fake,
        "/Workers?TargetWorkersExpression=agent_id%20IN%20%5B1%5D",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["status"], 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("TargetWorkersExpression")
    );

    let (status, one) = get(&fake, &format!("/Workers/{alice}")).await;
    assert_eq!(status, 200);
    let attributes: Value = serde_json::from_str(one["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(attributes["agent_id"], "1001");
    assert_eq!(
        one["links"]["channels"],
        format!("{}/Workers/{alice}/Channels", workspace(&fake))
    );

    let missing = format!("WK{:032x}", 999);
    let (status, error) = get(&fake, &format!("/Workers/{missing}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        error["message"],
        format!(
            "The requested resource /Workspaces/{}/Workers/{missing} was not found",
            tr::WORKSPACE_SID
        )
    );
    assert_eq!(error["code"], 20404);
    assert_eq!(get(&fake, "/Queues").await.0, 404);
    let delete = client()
        .delete(format!("{}/Workers/{alice}", workspace(&fake)))
        .basic_auth(tr::ACCOUNT_SID, Some(tr::AUTH_TOKEN));
    assert_eq!(answer(delete).await.1["status"], 405);
}

#[tokio::test]
async fn an_activity_update_sends_a_signed_event() {
    let fake = Fake::start().await;
    let (url, received) = receiver().await;
    fake.set_callback(&url);
    let alice = fake.add_worker("Alice", json!({"agent_id": "1001"}));
    let available = fake.activity_sid("Available");

    let (status, worker) = post(
        &fake,
        &format!("/Workers/{alice}"),
        &[("ActivitySid", &available)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(worker["activity_name"], "Available");
    assert_eq!(worker["available"], true);
    assert_eq!(fake.worker(&alice).activity_name, "Available");
    // The same Activity again changes nothing, so sends nothing.
    post(
        &fake,
        &format!("/Workers/{alice}"),
        &[("ActivitySid", &available)],
    )
    .await;
    fake.settled().await;

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (signature, params) = &got[0];
    assert_eq!(
        signature.as_deref(),
        Some(Fake::sign(&url, params, tr::AUTH_TOKEN).as_str())
    );
    let p = |name| tr::param(params, name);
    assert_eq!(p("EventType"), Some("worker.activity.update"));
    assert_eq!(p("WorkerSid"), Some(alice.as_str()));
    assert_eq!(p("WorkerActivityName"), Some("Available"));
    assert_eq!(p("WorkerPreviousActivityName"), Some("Offline"));
    assert_eq!(p("ResourceType"), Some("Worker"));
    assert!(p("Sid").unwrap().starts_with("EV"));
    assert!(p("Timestamp").unwrap().parse::<u64>().is_ok());
    assert_eq!(fake.deliveries()[0].status, Some(204));

    let forged = fake
        .send_event_raw(
            &url,
            &[("EventType", "worker.activity.update")],
            Some("bad"),
        )
        .await;
    assert_eq!(forged, 204);
    assert_eq!(received.lock().unwrap()[1].0.as_deref(), Some("bad"));
}

#[tokio::test]
async fn reject_pending_reservations_rejects_them() {
    let fake = Fake::start().await;
    let (url, _received) = receiver().await;
    fake.set_callback(&url);
    let alice = fake.add_worker("Alice", json!({}));
    fake.set_activity(&alice, "Available");
    let (task, reservation) = fake.offer(&alice, "voice");
    let (_, t) = get(&fake, &format!("/Tasks/{task}")).await;
    assert_eq!(t["assignment_status"], "reserved");
    assert_eq!(t["task_channel_unique_name"], "voice");

    let path = format!("/Workers/{alice}");
    let available = fake.activity_sid("Available");
    let (status, error) = post(
        &fake,
        &path,
        &[
            ("ActivitySid", &available),
            ("RejectPendingReservations", "true"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("unavailable"),
        "{error}"
    );
    assert_eq!(fake.worker(&alice).reservations[0].3, "pending");
    let (status, _) = post(&fake, &path, &[("ActivitySid", "WA0000")]).await;
    assert_eq!(status, 400);

    let offline = fake.activity_sid("Offline");
    let (status, worker) = post(
        &fake,
        &path,
        &[
            ("ActivitySid", &offline),
            ("RejectPendingReservations", "true"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(worker["available"], false);
    let view = fake.worker(&alice);
    assert_eq!(
        view.reservations,
        [(
            reservation.clone(),
            task.clone(),
            "voice".into(),
            "rejected".into()
        )]
    );
    let (_, listed) = get(
        &fake,
        &format!("/Workers/{alice}/Reservations?ReservationStatus=rejected"),
    )
    .await;
    assert_eq!(listed["reservations"][0]["sid"], reservation.as_str());
    assert_eq!(listed["reservations"][0]["worker_name"], "Alice");
    assert_eq!(
        get(&fake, &format!("/Tasks/{task}")).await.1["assignment_status"],
        "pending"
    );

    fake.settled().await;
    assert_eq!(
        types(&fake),
        [
            "worker.activity.update",
            "reservation.created",
            "reservation.rejected",
            "worker.activity.update"
        ]
    );
    let rejected = &fake.deliveries()[2];
    assert_eq!(rejected.param("ReservationSid"), Some(reservation.as_str()));
    assert_eq!(rejected.param("TaskSid"), Some(task.as_str()));
}

#[tokio::test]
async fn a_reservation_lives_through_its_events_in_order() {
    let fake = Fake::start().await;
    let (url, _received) = receiver().await;
    fake.set_callback(&url);
    let alice = fake.add_worker("Alice", json!({}));
    let (task, reservation) = fake.offer(&alice, "chat");
    fake.accept(&reservation);
    let (_, chat) = get(&fake, &format!("/Workers/{alice}/Channels/chat")).await;
    assert_eq!(
        (
            chat["assigned_tasks"].clone(),
            chat["available_capacity_percentage"].clone()
        ),
        (json!(1), json!(0))
    );
    fake.wrapup(&reservation);
    fake.complete(&reservation);
    assert_eq!(
        get(&fake, &format!("/Tasks/{task}")).await.1["assignment_status"],
        "completed"
    );
    let (other, _) = fake.offer(&alice, "sms");
    fake.cancel_task(&other);
    fake.set_activity(&alice, "Available");
    let (_, late) = fake.offer(&alice, "sms");
    fake.time_out(&late);
    assert_eq!(fake.worker(&alice).activity_name, "Offline");
    fake.settled().await;
    assert_eq!(
        types(&fake),
        [
            "reservation.created",
            "reservation.accepted",
            "reservation.wrapup",
            "task.wrapup",
            "reservation.completed",
            "task.completed",
            "reservation.created",
            "reservation.canceled",
            "task.canceled",
            "worker.activity.update",
            "reservation.created",
            "reservation.timeout",
            "worker.activity.update",
        ]
    );
    assert!(fake.deliveries().iter().all(|d| d.status == Some(204)));
}

#[tokio::test]
async fn refusals_and_throttling_answer_errors_and_change_nothing() {
    let fake = Fake::start().await;
    let alice = fake.add_worker("Alice", json!({}));
    let path = format!("/Workers/{alice}/Channels/voice");
    fake.refuse(Refusal {
        method: "POST".into(),
        path_ends_with: "/Channels/voice".into(),
        status: 400,
        code: 20001,
        message: "Invalid channel".into(),
        times: 1,
    });
    let (status, body) = post(&fake, &path, &[("Available", "false")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 20001);
    assert_eq!(body["message"], "Invalid channel");
    assert!(fake.worker(&alice).channels["voice"]);
    assert_eq!(post(&fake, &path, &[("Available", "false")]).await.0, 200);
    assert!(!fake.worker(&alice).channels["voice"]);

    fake.throttle(1, Some(3));
    let response = client()
        .get(format!("{}/Workers", workspace(&fake)))
        .basic_auth(tr::ACCOUNT_SID, Some(tr::AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(get(&fake, "/Workers").await.0, 200);

    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(400), Some(200), Some(429), Some(200)]);
    assert_eq!(
        fake.requests()[0].form,
        [("Available".to_string(), "false".to_string())]
    );

    let json_body = client()
        .post(format!("{}/Workers/{alice}", workspace(&fake)))
        .basic_auth(tr::ACCOUNT_SID, Some(tr::AUTH_TOKEN))
        .json(&json!({"ActivitySid": fake.activity_sid("Available")}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status().as_u16(), 400);
    assert_eq!(fake.worker(&alice).activity_name, "Offline");
}

#[tokio::test]
async fn a_hanging_fake_never_answers() {
    let fake = Fake::start().await;
    fake.hang(true);
    let result = client()
        .get(format!("{}/Workers", workspace(&fake)))
        .basic_auth(tr::ACCOUNT_SID, Some(tr::AUTH_TOKEN))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(fake.requests()[0].status, None);
    fake.hang(false);
    assert_eq!(get(&fake, "/Workers").await.0, 200);
}

#[tokio::test]
async fn a_worker_channel_is_updated_by_its_unique_name() {
    let fake = Fake::start().await;
    let (url, received) = receiver().await;
    fake.set_callback(&url);
    let alice = fake.add_worker("Alice", json!({}));
    let (_, list) = get(&fake, &format!("/Workers/{alice}/Channels")).await;
    assert_eq!(list["meta"]["key"], "channels");
    let voice = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["task_channel_unique_name"] == "voice")
        .unwrap()
        .clone();
    let voice_sid = voice["sid"].as_str().unwrap();
    assert!(voice_sid.starts_with("WC"));
    assert_eq!(voice["configured_capacity"], 1);
    assert_eq!(voice["available"], true);

    let path = format!("/Workers/{alice}/Channels/voice");
    let (status, updated) = post(&fake, &path, &[("Available", "false")]).await;
    assert_eq!(status, 200);
    assert_eq!(updated["sid"], voice_sid);
    assert_eq!(updated["available"], false);
    assert_eq!(
        get(&fake, &format!("/Workers/{alice}/Channels/{voice_sid}"))
            .await
            .1["available"],
        false
    );
    // Unchanged availability sends nothing.
    post(&fake, &path, &[("Available", "false")]).await;
    let (status, _) = post(&fake, &path, &[("Capacity", "-1")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        post(&fake, &format!("/Workers/{alice}/Channels/fax"), &[])
            .await
            .0,
        404
    );
    fake.settled().await;

    assert_eq!(types(&fake), ["worker.channel.availability.update"]);
    let event = &fake.deliveries()[0];
    assert_eq!(event.param("TaskChannelUniqueName"), Some("voice"));
    assert_eq!(event.param("WorkerChannelAvailable"), Some("false"));
    assert_eq!(event.param("WorkerChannelPreviousCapacity"), Some("1"));
    let (signature, params) = received.lock().unwrap()[0].clone();
    assert_eq!(
        signature.unwrap(),
        Fake::sign(&url, &params, tr::AUTH_TOKEN)
    );
}
