//! `agent.json`: parsed and validated field by field, so every error names its field.

mod dependencies;
mod domain;
mod examples;
mod fields;
mod schema;

pub use dependencies::Range;
pub use examples::Example;
pub use schema::validate as validate_json;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::archive::normalize_file_path;
use crate::{Error, PlatformMaxima};
use fields::Object;

/// agent.json is small; anything bigger is a mistake or an attack on the parser.
const MAX_MANIFEST_BYTES: usize = 1 << 20;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_ALLOWED_DOMAINS: usize = 100;
const MIN_MEMORY_MB: u64 = 16;
/// Docker refuses fewer than 0.01 cores outright, and a runtime starts painfully slowly on
/// a few hundredths, so the floor is 0.05: a manifest that passes always runs.
pub const MIN_CPU_CORES: f64 = 0.05;
const MIN_TIMEOUT_MS: u64 = 100;

const FIELDS: &[&str] = &[
    "name",
    "version",
    "runtime",
    "entrypoint",
    "description",
    "inputs",
    "outputs",
    "capabilities",
    "resources",
    "changelog",
    "examples",
    "dependencies",
];
const RESOURCE_FIELDS: &[&str] = &["cpu_cores", "memory_mb", "timeout_ms"];
const HTTP_REQUEST_FIELDS: &[&str] = &["type", "allow_domains"];

/// `runtime` of agent.json: the one vocabulary type of `frameos-core`.
pub use frameos_core::Runtime;

/// The file names an entrypoint of `runtime` may have.
fn entrypoint_extensions(runtime: Runtime) -> &'static [&'static str] {
    match runtime {
        Runtime::Node => &[".js", ".cjs"],
        Runtime::Python => &[".py"],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_cores: f64,
    pub memory_mb: u64,
    pub timeout_ms: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_cores: 1.0,
            memory_mb: 256,
            timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Capability {
    HttpRequest { allow_domains: Vec<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    pub runtime: Runtime,
    /// Normalized like archive paths (no leading "./").
    pub entrypoint: String,
    pub description: String,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub capabilities: Vec<Capability>,
    pub resources: Resources,
    /// What changed in this version, for the release history.
    pub changelog: Option<String>,
    /// Sample runs shown on the agent's page.
    pub examples: Vec<Example>,
    /// The agents this one may call (`ctx.call`), by slug, with the versions it accepts.
    pub dependencies: std::collections::BTreeMap<String, Range>,
}

impl Manifest {
    /// Canonical JSON with defaults filled in (for storage and API responses).
    pub fn to_json(&self) -> Value {
        let capabilities: Vec<Value> = self
            .capabilities
            .iter()
            .map(|capability| match capability {
                Capability::HttpRequest { allow_domains } => {
                    json!({ "type": "http_request", "allow_domains": allow_domains })
                }
            })
            .collect();
        let mut value = json!({
            "name": self.name,
            "version": self.version.to_string(),
            "runtime": self.runtime.as_str(),
            "entrypoint": self.entrypoint,
            "description": self.description,
            "inputs": self.inputs,
            "capabilities": capabilities,
            "resources": {
                "cpu_cores": self.resources.cpu_cores,
                "memory_mb": self.resources.memory_mb,
                "timeout_ms": self.resources.timeout_ms,
            },
        });
        if let Some(object) = value.as_object_mut() {
            if let Some(outputs) = &self.outputs {
                object.insert("outputs".into(), outputs.clone());
            }
            if let Some(changelog) = &self.changelog {
                object.insert("changelog".into(), changelog.clone().into());
            }
            if !self.dependencies.is_empty() {
                let dependencies = self
                    .dependencies
                    .iter()
                    .map(|(slug, range)| (slug.clone(), Value::from(range.as_str())))
                    .collect();
                object.insert("dependencies".into(), Value::Object(dependencies));
            }
            if !self.examples.is_empty() {
                let examples = self.examples.iter().map(Example::to_json).collect();
                object.insert("examples".into(), Value::Array(examples));
            }
        }
        value
    }
}

/// Parses and validates agent.json field by field.
pub fn parse(json: &[u8], maxima: &PlatformMaxima) -> Result<Manifest, Error> {
    if json.len() > MAX_MANIFEST_BYTES {
        return Err(Error::ManifestSyntax(
            "the file is larger than 1 MiB".into(),
        ));
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| Error::ManifestSyntax(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(Error::ManifestSyntax(
            "the document must be a JSON object".into(),
        ));
    };
    fields::reject_unknown(&object, FIELDS, "")?;

    let name = name(fields::required(&object, "name")?)?;
    let version = version(fields::required(&object, "version")?)?;
    let runtime = runtime(fields::required(&object, "runtime")?)?;
    let entrypoint = entrypoint(fields::required(&object, "entrypoint")?, runtime)?;
    let description = description(fields::optional(&object, "description"))?;
    let inputs = fields::required(&object, "inputs")?;
    schema::check("inputs", inputs)?;
    let outputs = fields::optional(&object, "outputs");
    if let Some(outputs) = outputs {
        schema::check("outputs", outputs)?;
    }
    let examples = examples::examples(fields::optional(&object, "examples"), inputs, outputs)?;
    let dependencies =
        dependencies::dependencies(fields::optional(&object, "dependencies"), &name)?;
    Ok(Manifest {
        name,
        version,
        runtime,
        entrypoint,
        description,
        inputs: inputs.clone(),
        outputs: outputs.cloned(),
        changelog: examples::changelog(fields::optional(&object, "changelog"))?,
        examples,
        dependencies,
        capabilities: capabilities(fields::optional(&object, "capabilities"))?,
        resources: resources(fields::optional(&object, "resources"), maxima)?,
    })
}

fn name(value: &Value) -> Result<String, Error> {
    let name = fields::string(value, "name")?;
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(2..=64).contains(&name.len()) || !valid_chars {
        return Err(Error::manifest(
            "name",
            format!("{name:?} must be 2 to 64 characters of a-z, 0-9 and '-'"),
        ));
    }
    Ok(name.to_owned())
}

fn version(value: &Value) -> Result<semver::Version, Error> {
    let text = fields::string(value, "version")?;
    semver::Version::parse(text).map_err(|e| {
        Error::manifest(
            "version",
            format!("{text:?} is not a SemVer version like 1.2.0 ({e})"),
        )
    })
}

fn runtime(value: &Value) -> Result<Runtime, Error> {
    match fields::string(value, "runtime")? {
        "node" => Ok(Runtime::Node),
        "python" => Ok(Runtime::Python),
        other => Err(Error::manifest(
            "runtime",
            format!("{other:?} is not a runtime; expected \"node\" or \"python\""),
        )),
    }
}

fn entrypoint(value: &Value, runtime: Runtime) -> Result<String, Error> {
    let raw = fields::string(value, "entrypoint")?;
    let path = normalize_file_path(raw).map_err(|reason| {
        Error::manifest(
            "entrypoint",
            format!("{raw:?} is not a safe relative path: {reason}"),
        )
    })?;
    let extensions = entrypoint_extensions(runtime);
    if !extensions.iter().any(|ext| path.ends_with(ext)) {
        return Err(Error::manifest(
            "entrypoint",
            format!(
                "{raw:?} must end in {} for the {} runtime",
                extensions.join(" or "),
                runtime.as_str()
            ),
        ));
    }
    Ok(path)
}

fn description(value: Option<&Value>) -> Result<String, Error> {
    let Some(value) = value else {
        return Ok(String::new());
    };
    let text = fields::string(value, "description")?;
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::manifest(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

fn capabilities(value: Option<&Value>) -> Result<Vec<Capability>, Error> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut capabilities = Vec::new();
    for (i, item) in fields::array(value, "capabilities")?.iter().enumerate() {
        let field = format!("capabilities[{i}]");
        let object = fields::object(item, &field)?;
        let kind = object
            .get("type")
            .ok_or_else(|| Error::manifest(&format!("{field}.type"), "is required"))?;
        match fields::string(kind, &format!("{field}.type"))? {
            "http_request" => capabilities.push(http_request(object, &field)?),
            other => {
                return Err(Error::manifest(
                    &format!("{field}.type"),
                    format!("unknown capability {other:?}; the known one is \"http_request\""),
                ));
            }
        }
    }
    Ok(capabilities)
}

fn http_request(object: &Object, field: &str) -> Result<Capability, Error> {
    fields::reject_unknown(object, HTTP_REQUEST_FIELDS, &format!("{field}."))?;
    let list_field = format!("{field}.allow_domains");
    let list = object
        .get("allow_domains")
        .ok_or_else(|| Error::manifest(&list_field, "is required"))?;
    let list = fields::array(list, &list_field)?;
    if list.is_empty() || list.len() > MAX_ALLOWED_DOMAINS {
        return Err(Error::manifest(
            &list_field,
            format!("must list between 1 and {MAX_ALLOWED_DOMAINS} domains"),
        ));
    }
    let mut allow_domains = Vec::with_capacity(list.len());
    for (j, item) in list.iter().enumerate() {
        let item_field = format!("{list_field}[{j}]");
        let domain = fields::string(item, &item_field)?;
        domain::check(domain)
            .map_err(|reason| Error::manifest(&item_field, format!("{domain:?} {reason}")))?;
        allow_domains.push(domain.to_owned());
    }
    Ok(Capability::HttpRequest { allow_domains })
}

fn resources(value: Option<&Value>, maxima: &PlatformMaxima) -> Result<Resources, Error> {
    let mut resources = Resources::default();
    let Some(value) = value else {
        return Ok(resources);
    };
    let object = fields::object(value, "resources")?;
    fields::reject_unknown(object, RESOURCE_FIELDS, "resources.")?;
    if let Some(value) = fields::optional(object, "cpu_cores") {
        let field = "resources.cpu_cores";
        let cores = fields::number(value, field)?;
        if cores < MIN_CPU_CORES {
            return Err(Error::manifest(
                field,
                format!("must be at least {MIN_CPU_CORES}, got {cores}"),
            ));
        }
        at_most(field, cores, maxima.cpu_cores)?;
        resources.cpu_cores = cores;
    }
    if let Some(value) = fields::optional(object, "memory_mb") {
        let field = "resources.memory_mb";
        let memory = fields::whole_number(value, field)?;
        at_least(field, memory, MIN_MEMORY_MB)?;
        at_most(field, memory, maxima.memory_mb)?;
        resources.memory_mb = memory;
    }
    if let Some(value) = fields::optional(object, "timeout_ms") {
        let field = "resources.timeout_ms";
        let timeout = fields::whole_number(value, field)?;
        at_least(field, timeout, MIN_TIMEOUT_MS)?;
        at_most(field, timeout, maxima.timeout_ms)?;
        resources.timeout_ms = timeout;
    }
    Ok(resources)
}

fn at_least(field: &str, value: u64, minimum: u64) -> Result<(), Error> {
    if value < minimum {
        return Err(Error::manifest(
            field,
            format!("must be at least {minimum}, got {value}"),
        ));
    }
    Ok(())
}

/// Never clamps: a value above the platform maximum is refused.
fn at_most<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    maximum: T,
) -> Result<(), Error> {
    if value > maximum {
        return Err(Error::manifest(
            field,
            format!("must be at most {maximum} (the platform maximum), got {value}"),
        ));
    }
    Ok(())
}
