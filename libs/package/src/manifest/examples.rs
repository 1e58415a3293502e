//! The optional presentation fields of agent.json: `changelog` (what changed in this version)
//! and `examples` (inputs with the output they give), shown on the agent's page. Examples are
//! checked against the agent's own schemas, so a page never shows a run the agent would refuse.

use serde_json::{Value, json};

use super::{fields, schema};
use crate::Error;

const MAX_CHANGELOG_CHARS: usize = 4000;
const MAX_EXAMPLES: usize = 5;
const MAX_TITLE_CHARS: usize = 100;
const EXAMPLE_FIELDS: &[&str] = &["title", "inputs", "output"];

/// One sample run the developer shows buyers.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub title: Option<String>,
    pub inputs: Value,
    pub output: Option<Value>,
}

impl Example {
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "inputs": self.inputs });
        if let Some(object) = value.as_object_mut() {
            if let Some(title) = &self.title {
                object.insert("title".into(), title.clone().into());
            }
            if let Some(output) = &self.output {
                object.insert("output".into(), output.clone());
            }
        }
        value
    }
}

pub(super) fn changelog(value: Option<&Value>) -> Result<Option<String>, Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = fields::string(value, "changelog")?;
    if text.chars().count() > MAX_CHANGELOG_CHARS {
        return Err(Error::manifest(
            "changelog",
            format!("must be at most {MAX_CHANGELOG_CHARS} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

pub(super) fn examples(
    value: Option<&Value>,
    inputs_schema: &Value,
    outputs_schema: Option<&Value>,
) -> Result<Vec<Example>, Error> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = fields::array(value, "examples")?;
    if items.len() > MAX_EXAMPLES {
        return Err(Error::manifest(
            "examples",
            format!("at most {MAX_EXAMPLES} examples"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            example(
                item,
                &format!("examples[{i}]"),
                inputs_schema,
                outputs_schema,
            )
        })
        .collect()
}

fn example(
    item: &Value,
    field: &str,
    inputs_schema: &Value,
    outputs_schema: Option<&Value>,
) -> Result<Example, Error> {
    let object = fields::object(item, field)?;
    fields::reject_unknown(object, EXAMPLE_FIELDS, &format!("{field}."))?;
    let title = match fields::optional(object, "title") {
        None => None,
        Some(title) => {
            let title = fields::string(title, &format!("{field}.title"))?;
            if title.chars().count() > MAX_TITLE_CHARS {
                return Err(Error::manifest(
                    &format!("{field}.title"),
                    format!("must be at most {MAX_TITLE_CHARS} characters"),
                ));
            }
            Some(title.to_owned())
        }
    };
    let inputs = fields::required(object, "inputs")
        .map_err(|_| Error::manifest(&format!("{field}.inputs"), "is required"))?;
    schema::validate(inputs_schema, inputs).map_err(|e| {
        Error::manifest(
            &format!("{field}.inputs"),
            format!("does not match the inputs schema: {e}"),
        )
    })?;
    let output = fields::optional(object, "output");
    if let (Some(output), Some(outputs_schema)) = (output, outputs_schema) {
        schema::validate(outputs_schema, output).map_err(|e| {
            Error::manifest(
                &format!("{field}.output"),
                format!("does not match the outputs schema: {e}"),
            )
        })?;
    }
    Ok(Example {
        title,
        inputs: inputs.clone(),
        output: output.cloned(),
    })
}
