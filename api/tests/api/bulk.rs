//! `POST /users/bulk` (section 3): multipart part `file`, a CSV keyed by id; a bad file inserts
//! nothing; re-uploading inserts nothing; explicit ids advance the id sequence.

use std::fmt::Write as _;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

async fn upload(app: &TestApp, form: Form) -> (u16, Option<String>, Value) {
    parts(
        app.client
            .post(app.url("/users/bulk"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn csv_form(data: impl Into<Vec<u8>>) -> Form {
    Form::new().part(
        "file",
        Part::bytes(data.into())
            .file_name("users.csv")
            .mime_str("text/csv")
            .unwrap(),
    )
}

async fn user_count(app: &TestApp) -> usize {
    parts(app.get("/users").await)
        .await
        .2
        .as_array()
        .unwrap()
        .len()
}

backend_test! {
    async fn bulk_without_a_file_part_or_with_an_empty_filename_is_400(app) {
        let required = json!({"error": "Field 'file' is required"});
        let no_file = Form::new().part("other", Part::bytes(b"username,email\na,a@x.io\n".to_vec()).file_name("u.csv"));
        assert_eq!(upload(&app, no_file).await, (400, None, required.clone()));
        let empty_name = Form::new().part("file", Part::bytes(b"username,email\na,a@x.io\n".to_vec()).file_name(""));
        assert_eq!(upload(&app, empty_name).await, (400, None, required.clone()));
        // A plain form field named `file` (no filename at all) is not an uploaded file either.
        let text_field = Form::new().text("file", "username,email\na,a@x.io\n");
        assert_eq!(upload(&app, text_field).await, (400, None, required.clone()));
        // Not multipart at all.
        let resp = app.post("/users/bulk", &json!({"file": "username,email\na,a@x.io\n"})).await;
        assert_eq!(parts(resp).await, (400, None, required.clone()));
        let resp = app.client.post(app.url("/users/bulk")).send().await.unwrap();
        assert_eq!(parts(resp).await, (400, None, required));
        assert_eq!(user_count(&app).await, 0);
    }
}

backend_test! {
    async fn bulk_imports_rows_trimmed_with_ids_and_both_timestamp_forms(app) {
        let csv = "id,username,email,created_at\n\
                   10, ada , ada@x.io ,2025-01-02 03:04:05\n\
                   11,\"Smith, J\",j@x.io,2025-01-02T03:04:06\n\
                   12,dup,ADA@x.io,\n";
        let (status, cache, body) = upload(&app, csv_form(csv)).await;
        assert_eq!((status, cache, body), (201, None, json!({"count": 3})));
        let (_, _, users) = parts(app.get("/users").await).await;
        assert_eq!(users[0], json!({"id": 10, "username": "ada", "email": "ada@x.io", "created_at": "2025-01-02T03:04:05"}));
        assert_eq!(users[1], json!({"id": 11, "username": "Smith, J", "email": "j@x.io", "created_at": "2025-01-02T03:04:06"}));
        // Email uniqueness is an API rule, not a constraint: the seed data holds a duplicate.
        assert_eq!(users[2]["email"], "ADA@x.io");
        let created = chrono::NaiveDateTime::parse_from_str(users[2]["created_at"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap();
        let age = chrono::Utc::now().naive_utc() - created;
        assert!(age.num_seconds().abs() < 60, "an empty created_at means now: {created}");
    }
}

backend_test! {
    async fn bulk_tolerates_a_utf8_bom_before_the_header(app) {
        let mut data = b"\xEF\xBB\xBFid,username,email\n".to_vec();
        data.extend_from_slice("7,zoë,zoe@x.io\n".as_bytes());
        assert_eq!(upload(&app, csv_form(data)).await, (201, None, json!({"count": 1})));
        let (status, _, user) = parts(app.get("/users/7").await).await;
        assert_eq!((status, &user["username"]), (200, &json!("zoë")), "the BOM did not hide the id column");
        // Header names are matched without regard to case or surrounding spaces.
        let csv = " ID , Username ,EMAIL\n8,yan,yan@x.io\n";
        assert_eq!(upload(&app, csv_form(csv)).await, (201, None, json!({"count": 1})));
        assert_eq!(parts(app.get("/users/8").await).await.2["email"], "yan@x.io");
    }
}

backend_test! {
    async fn bulk_row_without_username_or_email_is_400_and_inserts_nothing(app) {
        let required = json!({"error": "CSV rows must include username and email"});
        for csv in [
            "id,username,email\n1,a,a@x.io\n2,,b@x.io\n",
            "id,username,email\n1,a,a@x.io\n2,b,\n",
            "id,username,email\n1,a,a@x.io\n2,b\n",
            "id,username,email\n1,a,a@x.io\n2,  ,  \t\n",
            "id,username\n1,a\n",
            "id,email\n1,a@x.io\n",
        ] {
            assert_eq!(upload(&app, csv_form(csv)).await, (400, None, required.clone()), "{csv:?}");
        }
        assert_eq!(user_count(&app).await, 0);
    }
}

backend_test! {
    async fn bulk_unparseable_id_created_at_or_non_utf8_is_400_naming_the_row(app) {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"id,username,email\n1,a,a@x.io\nx,b,b@x.io\n".to_vec(), "row 3"),
            (b"id,username,email\n1,a,a@x.io\n2.5,b,b@x.io\n".to_vec(), "row 3"),
            (b"id,username,email\n1,a,a@x.io\n-4,b,b@x.io\n".to_vec(), "row 3"),
            (b"id,username,email\n99999999999999999999,a,a@x.io\n".to_vec(), "row 2"),
            (b"username,email,created_at\na,a@x.io,2025-01-02\n".to_vec(), "row 2"),
            (b"username,email,created_at\na,a@x.io,2025-01-02 03:04:05\nb,b@x.io,yesterday\n".to_vec(), "row 3"),
            (b"username,email,created_at\na,a@x.io,2025-13-02 03:04:05\n".to_vec(), "row 2"),
            (b"username,email\na,a@x.io\nb,b@x.io\n\xff\xfe,c@x.io\n".to_vec(), "row 4"),
        ];
        for (csv, row) in cases {
            let (status, cache, body) = upload(&app, csv_form(csv.clone())).await;
            assert_eq!((status, cache), (400, None), "{}", String::from_utf8_lossy(&csv));
            let message = body["error"].as_str().unwrap();
            assert!(message.contains(row), "{message:?} should name {row}");
            assert_eq!(body.as_object().unwrap().len(), 1);
        }
        assert_eq!(user_count(&app).await, 0, "a bad file inserts nothing");
    }
}

backend_test! {
    async fn bulk_reupload_of_the_same_file_inserts_nothing_and_answers_200(app) {
        let csv = "id,username,email\n1,a,a@x.io\n2,b,b@x.io\n";
        assert_eq!(upload(&app, csv_form(csv)).await, (201, None, json!({"count": 2})));
        assert_eq!(upload(&app, csv_form(csv)).await, (200, None, json!({"count": 0})));
        assert_eq!(user_count(&app).await, 2);
        // Existing ids are skipped (not overwritten); new ones are inserted.
        let more = "id,username,email\n2,changed,changed@x.io\n3,c,c@x.io\n";
        assert_eq!(upload(&app, csv_form(more)).await, (201, None, json!({"count": 1})));
        assert_eq!(parts(app.get("/users/2").await).await.2["username"], "b");
        // A header-only file has nothing to insert.
        assert_eq!(upload(&app, csv_form("id,username,email\n")).await, (200, None, json!({"count": 0})));
    }
}

backend_test! {
    async fn bulk_explicit_ids_advance_the_sequence_so_post_users_still_works(app) {
        let first = app.create_user("first", "first@x.io").await;
        assert_eq!(first["id"], 1);
        let csv = "id,username,email\n500,a,a@x.io\n40,b,b@x.io\n";
        assert_eq!(upload(&app, csv_form(csv)).await.2, json!({"count": 2}));
        let next = app.create_user("next", "next@x.io").await;
        assert!(next["id"].as_i64().unwrap() > 500, "{next}");
        // Rows without an id get fresh ids past every explicit one, in the same upload.
        let mixed = "id,username,email\n,c,c@x.io\n900,d,d@x.io\n,e,e@x.io\n";
        assert_eq!(upload(&app, csv_form(mixed)).await, (201, None, json!({"count": 3})));
        let (_, _, users) = parts(app.get("/users").await).await;
        let ids: Vec<i64> = users.as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 7, "{ids:?}");
        assert!(ids.contains(&900));
        let after = app.create_user("after", "after@x.io").await;
        assert!(after["id"].as_i64().unwrap() > *ids.iter().max().unwrap());
    }
}

backend_test! {
    async fn bulk_reads_csv_uploads_larger_than_the_json_limit(app) {
        // 3 MiB: above the 2 MiB JSON limit, well under the CSV limit. Blank rows are skipped.
        let mut csv = String::from("username,email\nbig,big@x.io\n");
        while csv.len() < 3 * 1024 * 1024 {
            csv.push_str(",\n");
        }
        assert_eq!(upload(&app, csv_form(csv)).await, (201, None, json!({"count": 1})));
    }
}

backend_test! {
    async fn bulk_rejects_over_long_values_and_nul_bytes_naming_the_row(app) {
        let long_name = format!("username,email\nok,ok@x.io\n{},a@x.io\n", "u".repeat(121));
        let long_email = format!("username,email\n{},{}@x.io\n", "u", "e".repeat(251));
        let nul = "username,email\na\u{0}b,a@x.io\n".to_owned();
        for (csv, row) in [(long_name, "row 3"), (long_email, "row 2"), (nul, "row 2")] {
            let (status, _, body) = upload(&app, csv_form(csv)).await;
            assert_eq!(status, 400, "{body}");
            assert!(body["error"].as_str().unwrap().contains(row), "{body}");
        }
        assert_eq!(user_count(&app).await, 0);
    }
}

backend_test! {
    async fn bulk_reads_csv_uploads_of_50_mib(app) {
        // The CSV limit is at least 50 MiB: a 50 MiB file is read and judged on its content
        // (here one over-long username), not refused as too large.
        let mut csv = String::from("username,email\n");
        csv.push_str(&"u".repeat(50 * 1024 * 1024 - csv.len() - 10));
        csv.push_str(",a@x.io\n");
        let (status, _, body) = upload(&app, csv_form(csv)).await;
        assert_eq!(status, 400, "{}", body.to_string().chars().take(200).collect::<String>());
        assert!(body["error"].as_str().unwrap().contains("row 2"));
    }
}

backend_test! {
    async fn a_bad_row_after_several_inserted_chunks_rolls_the_whole_upload_back(app) {
        // Rows are inserted 1,000 at a time as they are parsed: a bad row at line 2,502 comes
        // after two chunks went in, and the upload must still insert nothing.
        let mut csv = String::from("username,email\n");
        for i in 0..2_500 {
            writeln!(csv, "u{i},u{i}@x.io").unwrap();
        }
        csv.push_str("late,\n");
        let (status, _, body) = upload(&app, csv_form(csv)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body, json!({"error": "CSV rows must include username and email"}));
        assert_eq!(user_count(&app).await, 0);
        let mut csv = String::from("id,username,email\n");
        for i in 1..=2_500 {
            writeln!(csv, "{i},u{i},u{i}@x.io").unwrap();
        }
        csv.push_str("x,bad,bad@x.io\n");
        let (status, _, body) = upload(&app, csv_form(csv)).await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"error": "CSV row 2502: invalid id 'x'"}));
        assert_eq!(user_count(&app).await, 0);
    }
}

backend_test! {
    async fn a_large_mixed_upload_is_counted_exactly_and_ids_never_clash(app) {
        // 12,000 rows, ids given on every other one and rows without ids interleaved: the rows
        // with ids go in first, the others after the sequence passed every explicit id.
        let mut csv = String::from("id,username,email\n");
        for i in 0..12_000 {
            if i % 2 == 0 {
                writeln!(csv, "{},with{i},with{i}@x.io", 100_000 + i).unwrap();
            } else {
                writeln!(csv, ",without{i},without{i}@x.io").unwrap();
            }
        }
        assert_eq!(upload(&app, csv_form(csv.clone())).await, (201, None, json!({"count": 12_000})));
        assert_eq!(user_count(&app).await, 12_000);
        // Again: the rows with ids are skipped, the ones without are new rows.
        assert_eq!(upload(&app, csv_form(csv)).await, (201, None, json!({"count": 6_000})));
        let next = app.create_user("next", "next@x.io").await;
        assert!(next["id"].as_i64().unwrap() > 111_998, "{next}");
    }
}

/// Sends a multipart upload of `file_len` bytes over a raw connection (declaring its length, or
/// chunked) while reading the answer concurrently, and returns the answer's status line and
/// body. (An HTTP client library may report the server's early answer as a broken pipe: the
/// server stops reading a refused upload and closes.)
async fn raw_upload(app: &TestApp, file_len: usize, chunked: bool) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"users.csv\"\r\nContent-Type: text/csv\r\n\r\n";
    let tail = "\r\n--b--\r\n";
    let addr = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let length = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", head.len() + file_len + tail.len())
    };
    let request = format!(
        "POST /users/bulk HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=b\r\n{length}\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        let frame = |data: &[u8]| {
            if chunked {
                let mut f = format!("{:x}\r\n", data.len()).into_bytes();
                f.extend_from_slice(data);
                f.extend_from_slice(b"\r\n");
                f
            } else {
                data.to_vec()
            }
        };
        wr.write_all(request.as_bytes()).await?;
        wr.write_all(&frame(head.as_bytes())).await?;
        let chunk = vec![b'a'; 1024 * 1024];
        for _ in 0..file_len / chunk.len() {
            wr.write_all(&frame(&chunk)).await?;
        }
        wr.write_all(&frame(tail.as_bytes())).await?;
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_mins(1),
        rd.read_to_end(&mut answer),
    )
    .await;
    writer.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body.trim()).unwrap_or(Value::String(body.to_owned())),
    )
}

backend_test! {
    async fn an_upload_past_the_csv_limit_is_413_with_or_without_a_length(app) {
        let over = 65 * 1024 * 1024;
        // A declared length past the limit is refused before the body is read; a chunked
        // upload once its file part passes the limit.
        for chunked in [false, true] {
            let (status, body) = raw_upload(&app, over, chunked).await;
            assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "chunked: {chunked}");
            assert_eq!(body, json!({"error": "Request body too large"}), "chunked: {chunked}");
        }
        // Just under the limit is read whole and judged on its content: one 60 MiB header line
        // and no rows.
        let (status, body) = raw_upload(&app, 60 * 1024 * 1024, true).await;
        assert_eq!((status.as_str(), body), ("HTTP/1.1 200 OK", json!({"count": 0})));
        assert_eq!(user_count(&app).await, 0);
    }
}
