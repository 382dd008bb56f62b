//! Snapshots: content versioning, save/load round trip without re-embedding, the `current`
//! pointer and the watcher, corruption detection. Uses a tiny fake embedder, no model.

use std::cell::Cell;
use std::path::PathBuf;

use switchboard_operators::retrieval::snapshot::{content_version, current_version, set_current};
use switchboard_operators::retrieval::{
    Embedder, KbEntry, Retriever, RetrieverConfig, Snapshot, SnapshotError, SnapshotWatcher,
};
use switchboard_schemas::Locale;

/// Hashes characters into a small vector; counts the texts it embedded.
struct FakeEmbedder {
    name: String,
    dim: usize,
    calls: Cell<usize>,
}

impl FakeEmbedder {
    fn new(name: &str, dim: usize) -> Self {
        FakeEmbedder {
            name: name.into(),
            dim,
            calls: Cell::new(0),
        }
    }
}

impl Embedder for FakeEmbedder {
    fn name(&self) -> &str {
        &self.name
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed(&self, texts: &[&str]) -> switchboard_operators::Result<Vec<Vec<f32>>> {
        self.calls.set(self.calls.get() + texts.len());
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.01f32; self.dim];
                for c in t.chars() {
                    v[c as usize % self.dim] += 1.0;
                }
                v // not normalised: the snapshot normalises
            })
            .collect())
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "switchboard-snap-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entry(id: &str, locale: Locale, intent: &str, questions: &[&str]) -> KbEntry {
    KbEntry {
        id: id.into(),
        locale,
        intent: intent.into(),
        questions: questions.iter().map(|q| q.to_string()).collect(),
        answer: format!("answer of {id}"),
        slots: vec![],
    }
}

fn entries() -> Vec<KbEntry> {
    vec![
        entry(
            "zh-1",
            Locale::ZhCn,
            "return_goods",
            &["我要退货", "怎么退"],
        ),
        entry("en-1", Locale::En, "invoice", &["I need an invoice"]),
        entry(
            "zh-2",
            Locale::ZhCn,
            "invoice",
            &["开发票", "发票在哪", "要发票"],
        ),
    ]
}

fn build(entries: Vec<KbEntry>, zh: &FakeEmbedder, en: &FakeEmbedder) -> Snapshot {
    Snapshot::build(entries, |l| match l {
        Locale::ZhCn => Some(zh),
        Locale::En => Some(en),
    })
    .expect("build")
}

#[test]
fn build_embeds_each_locale_with_its_encoder() {
    let zh = FakeEmbedder::new("fake-zh", 8);
    let en = FakeEmbedder::new("fake-en", 5);
    let snap = build(entries(), &zh, &en);
    assert_eq!((zh.calls.get(), en.calls.get()), (5, 1));
    let zh_block = snap.locale(Locale::ZhCn).expect("zh block");
    assert_eq!(
        (zh_block.encoder.as_str(), zh_block.dim, zh_block.rows.len()),
        ("fake-zh", 8, 5)
    );
    assert_eq!(snap.locale(Locale::En).expect("en").dim, 5);
    // Rows follow entries then questions; vectors are unit length.
    let refs: Vec<(u32, u32)> = zh_block
        .rows
        .iter()
        .map(|r| (r.entry_index, r.question_index))
        .collect();
    assert_eq!(refs, [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2)]);
    for i in 0..zh_block.rows.len() {
        let n: f32 = zh_block.row(i).iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
    assert_eq!(
        snap.encoders(),
        [(Locale::ZhCn, "fake-zh"), (Locale::En, "fake-en")]
    );
}

#[test]
fn version_is_a_content_hash_of_entries_and_encoder_names() {
    let zh = FakeEmbedder::new("fake-zh", 8);
    let en = FakeEmbedder::new("fake-en", 5);
    let a = build(entries(), &zh, &en);
    let b = build(entries(), &zh, &en);
    assert_eq!(a.version, b.version);
    assert_eq!(a.version.len(), 32);
    assert!(a
        .version
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(
        a.version,
        content_version(
            &entries(),
            &[(Locale::En, "fake-en"), (Locale::ZhCn, "fake-zh")]
        )
    );

    let mut changed = entries();
    changed[1].answer.push('!');
    assert_ne!(build(changed, &zh, &en).version, a.version);
    let other_model = FakeEmbedder::new("fake-zh-v2", 8);
    assert_ne!(build(entries(), &other_model, &en).version, a.version);

    // No encoder for a locale with entries is an error; none needed for an absent locale.
    let err = Snapshot::build(entries(), |l| (l == Locale::ZhCn).then_some(&zh));
    assert!(matches!(err, Err(SnapshotError::NoEncoder(Locale::En))));
    let zh_only: Vec<KbEntry> = entries()
        .into_iter()
        .filter(|e| e.locale == Locale::ZhCn)
        .collect();
    let snap = Snapshot::build(zh_only, |l| (l == Locale::ZhCn).then_some(&zh)).expect("zh only");
    assert!(snap.locale(Locale::En).is_none());
}

#[test]
fn save_and_load_round_trip_without_re_embedding() {
    let dir = TempDir::new("roundtrip");
    let zh = FakeEmbedder::new("fake-zh", 8);
    let en = FakeEmbedder::new("fake-en", 5);
    let snap = build(entries(), &zh, &en);
    let calls = zh.calls.get() + en.calls.get();
    let folder = snap.save(&dir.0).expect("save");
    assert_eq!(folder, dir.0.join(&snap.version));
    for file in [
        "manifest.json",
        "entries.json",
        "vectors.zh-CN.f32",
        "vectors.en.f32",
    ] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    assert_eq!(
        std::fs::metadata(folder.join("vectors.zh-CN.f32"))
            .expect("meta")
            .len(),
        5 * 8 * 4
    );
    let loaded = Snapshot::load(&folder).expect("load");
    assert_eq!(loaded, snap, "bit-identical entries and vectors");
    assert_eq!(
        zh.calls.get() + en.calls.get(),
        calls,
        "loading embeds nothing"
    );
    // Saving again is a no-op; no temporary folders are left behind.
    snap.save(&dir.0).expect("save again");
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&snap.version));

    // The loaded snapshot serves retrieval like the original.
    let r1 = Retriever::new(snap, RetrieverConfig::default()).expect("index");
    let r2 = Retriever::new(loaded, RetrieverConfig::default()).expect("index");
    let q = zh.embed(&["要发票"]).expect("embed").remove(0);
    let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    let q: Vec<f32> = q.iter().map(|x| x / n).collect();
    let a = r1.rank(Locale::ZhCn, None, "要发票", &q, 3);
    let b = r2.rank(Locale::ZhCn, None, "要发票", &q, 3);
    assert_eq!(a, b);
    assert_eq!(a[0].entry.id, "zh-2");
}

#[test]
fn current_pointer_and_watcher_swap_versions() {
    let dir = TempDir::new("current");
    let zh = FakeEmbedder::new("fake-zh", 8);
    let en = FakeEmbedder::new("fake-en", 5);
    assert!(matches!(
        Snapshot::load_current(&dir.0),
        Err(SnapshotError::NoCurrent { .. })
    ));
    let mut watcher = SnapshotWatcher::new(&dir.0);
    assert!(
        watcher.poll().expect("poll").is_none(),
        "nothing published yet"
    );

    let v1 = build(entries(), &zh, &en);
    v1.publish(&dir.0).expect("publish v1");
    assert_eq!(
        current_version(&dir.0).expect("read"),
        Some(v1.version.clone())
    );
    let got = watcher.poll().expect("poll").expect("new snapshot");
    assert_eq!(got.version, v1.version);
    assert!(watcher.poll().expect("poll").is_none(), "unchanged");

    let mut more = entries();
    more.push(entry("en-2", Locale::En, "greeting", &["hello"]));
    let v2 = build(more, &zh, &en);
    v2.publish(&dir.0).expect("publish v2");
    assert_eq!(
        watcher.poll().expect("poll").expect("v2").version,
        v2.version
    );
    assert_eq!(
        Snapshot::load_current(&dir.0).expect("current").version,
        v2.version
    );

    // Rolling back is just pointing `current` at the old folder.
    set_current(&dir.0, &v1.version).expect("roll back");
    assert_eq!(
        watcher.poll().expect("poll").expect("v1 again").version,
        v1.version
    );
    assert_eq!(watcher.loaded_version(), Some(v1.version.as_str()));
    // No temporary files are left next to `current`.
    assert!(std::fs::read_dir(&dir.0).expect("ls").all(|e| !e
        .expect("e")
        .file_name()
        .to_string_lossy()
        .starts_with('.')));

    // Refused: unknown versions and path-like versions.
    assert!(set_current(&dir.0, "abcdef").is_err());
    assert!(matches!(
        set_current(&dir.0, "../etc"),
        Err(SnapshotError::BadVersion(_))
    ));
    std::fs::write(dir.0.join("current"), "../../etc/passwd\n").expect("write");
    assert!(matches!(watcher.poll(), Err(SnapshotError::BadVersion(_))));
}

#[test]
fn corrupted_folders_are_refused() {
    let dir = TempDir::new("corrupt");
    let zh = FakeEmbedder::new("fake-zh", 8);
    let en = FakeEmbedder::new("fake-en", 5);
    let snap = build(entries(), &zh, &en);
    let folder = snap.save(&dir.0).expect("save");

    let vectors = folder.join("vectors.zh-CN.f32");
    let good = std::fs::read(&vectors).expect("read");
    let mut flipped = good.clone();
    flipped[3] ^= 0x40;
    std::fs::write(&vectors, &flipped).expect("write");
    assert!(matches!(
        Snapshot::load(&folder),
        Err(SnapshotError::Corrupt { .. })
    ));
    std::fs::write(&vectors, &good[..good.len() - 4]).expect("write");
    assert!(matches!(
        Snapshot::load(&folder),
        Err(SnapshotError::Corrupt { .. })
    ));
    std::fs::write(&vectors, &good).expect("restore");
    Snapshot::load(&folder).expect("restored");

    let entries_file = folder.join("entries.json");
    let text = std::fs::read_to_string(&entries_file).expect("read");
    std::fs::write(
        &entries_file,
        text.replace("answer of zh-1", "answer of zh-X"),
    )
    .expect("write");
    let err = Snapshot::load(&folder).expect_err("edited entries");
    assert!(err.to_string().contains("hashes to"), "{err}");

    std::fs::remove_file(folder.join("manifest.json")).expect("rm");
    assert!(matches!(
        Snapshot::load(&folder),
        Err(SnapshotError::Io { .. })
    ));
}

#[test]
fn from_vectors_checks_sizes() {
    let e = entries();
    let ok = Snapshot::from_vectors(
        e.clone(),
        vec![
            (Locale::ZhCn, "z".into(), 2, vec![1.0; 10]),
            (Locale::En, "e".into(), 3, vec![1.0; 3]),
        ],
    );
    assert!(ok.is_ok());
    let bad = Snapshot::from_vectors(
        e.clone(),
        vec![
            (Locale::ZhCn, "z".into(), 2, vec![1.0; 9]),
            (Locale::En, "e".into(), 3, vec![1.0; 3]),
        ],
    );
    assert!(matches!(bad, Err(SnapshotError::BadEmbedding { .. })));
    let missing = Snapshot::from_vectors(e, vec![(Locale::ZhCn, "z".into(), 2, vec![1.0; 10])]);
    assert!(matches!(missing, Err(SnapshotError::NoEncoder(Locale::En))));
}
