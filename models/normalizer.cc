// Unicode normalization forms for tokenizer.json normalizers, delegated to ICU's Normalizer2.
#include "models/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "models/tokenizer_json_util.h"

namespace attnres {

absl::StatusOr<Normalizer> Normalizer::FromJson(const nlohmann::json& j, std::string_view origin) {
  Normalizer normalizer;
  if (!j.is_null()) {
    if (absl::Status s = AddForms(j, origin, "normalizer", &normalizer.forms_); !s.ok()) return s;
  }
  // Fail at load, not per request, if ICU's data is unusable.
  UErrorCode status = U_ZERO_ERROR;
  icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) {
    return absl::InternalError(
        json_util::Cat(origin, ": ICU normalizer unavailable: ", u_errorName(status)));
  }
  return normalizer;
}

absl::Status Normalizer::AddForms(const nlohmann::json& j, std::string_view origin,
                                  const std::string& key, std::vector<Form>* forms) {
  std::string type;
  if (absl::Status s = json_util::GetString(j, "type", origin, key, &type); !s.ok()) return s;
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return json_util::LoadError(origin, key + ".normalizers", "missing or not an array");
    }
    for (size_t i = 0; i < j["normalizers"].size(); ++i) {
      const std::string item_key = json_util::Cat(key, ".normalizers[", i, "]");
      if (absl::Status s = AddForms(j["normalizers"][i], origin, item_key, forms); !s.ok()) {
        return s;
      }
    }
  } else if (type == "NFC") {
    forms->push_back(Form::kNfc);
  } else if (type == "NFD") {
    forms->push_back(Form::kNfd);
  } else if (type == "NFKC") {
    forms->push_back(Form::kNfkc);
  } else if (type == "NFKD") {
    forms->push_back(Form::kNfkd);
  } else {
    return json_util::LoadError(origin, key + ".type",
                                json_util::Cat("unsupported normalizer \"", type, "\""));
  }
  return absl::OkStatus();
}

std::string Normalizer::Normalize(std::string_view text) const {
  if (forms_.empty() || text.empty()) return std::string(text);
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  for (const Form form : forms_) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = form == Form::kNfc    ? icu::Normalizer2::getNFCInstance(status)
                                : form == Form::kNfd  ? icu::Normalizer2::getNFDInstance(status)
                                : form == Form::kNfkc ? icu::Normalizer2::getNFKCInstance(status)
                                                      : icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status)) continue;  // checked at load; ICU data cannot vanish later
    icu::UnicodeString normalized = n->normalize(u, status);
    if (U_SUCCESS(status)) u = std::move(normalized);
  }
  std::string out;
  u.toUTF8String(out);
  return out;
}

}  // namespace attnres
