"""A private Ground Truth work team backed by Amazon Cognito, made from the command line.

A private workforce is one Cognito user pool per region (with a domain and an app client); a
work team is a Cognito group in it. If the region already has a Cognito workforce, its pool
and app client are reused; otherwise a pool, its domain and an app client are created, then
``CreateWorkforce``, and the app client gets the labeling portal as its OAuth callback. Then:
a group, one user per ``--email`` (Cognito e-mails each an invitation), and
``CreateWorkteam``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OAUTH = {"AllowedOAuthFlows": ["code", "implicit"],
         "AllowedOAuthScopes": ["email", "openid", "profile"],
         "AllowedOAuthFlowsUserPoolClient": True,
         "SupportedIdentityProviders": ["COGNITO"]}


@dataclass(frozen=True)
class Workforce:
    user_pool: str
    client_id: str
    portal: str | None  # https://<subdomain>, when known


def existing_workforce(sagemaker: Any) -> Workforce | None:
    workforces = sagemaker.list_workforces()["Workforces"]
    if not workforces:
        return None
    workforce = workforces[0]  # at most one per region
    cognito = workforce.get("CognitoConfig")
    if not cognito:
        raise ValueError(f"this region's private workforce {workforce['WorkforceName']!r} "
                         "signs in through OIDC, not Cognito: create the team in its identity "
                         "provider and pass --workteam-arn")
    return Workforce(cognito["UserPool"], cognito["ClientId"], _portal(workforce))


def _portal(workforce: dict[str, Any]) -> str | None:
    subdomain = workforce.get("SubDomain")
    return f"https://{subdomain}" if subdomain else None


def create_workforce(cognito: Any, sagemaker: Any, name: str) -> Workforce:
    """A user pool (invitation only, e-mail sign-in), its domain and app client, and the
    region's workforce on them."""
    pool = cognito.create_user_pool(
        PoolName=f"{name}-workforce",
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
    )["UserPool"]["Id"]
    # The worker portal signs in through the pool's hosted domain; it must be unique.
    domain = f"{name}-{pool.split('_', 1)[1].lower()}"
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool)
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName=f"{name}-portal", GenerateSecret=True,
    )["UserPoolClient"]["ClientId"]
    sagemaker.create_workforce(WorkforceName=name,
                               CognitoConfig={"UserPool": pool, "ClientId": client})
    portal = _portal(sagemaker.describe_workforce(WorkforceName=name)["Workforce"])
    if portal:
        cognito.update_user_pool_client(
            UserPoolId=pool, ClientId=client, ClientName=f"{name}-portal",
            CallbackURLs=[f"{portal}/oauth2/idpresponse"], LogoutURLs=[f"{portal}/logout"],
            **OAUTH)
    return Workforce(pool, client, portal)


def create_workteam(cognito: Any, sagemaker: Any, name: str, emails: list[str],
                    description: str) -> tuple[str, Workforce]:
    """(work team ARN, workforce): the team's group, its invited members, the team."""
    workforce = existing_workforce(sagemaker) or create_workforce(cognito, sagemaker, name)
    cognito.create_group(GroupName=name, UserPoolId=workforce.user_pool,
                         Description=description)
    for email in emails:
        cognito.admin_create_user(
            UserPoolId=workforce.user_pool, Username=email,
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"])
        cognito.admin_add_user_to_group(UserPoolId=workforce.user_pool, Username=email,
                                        GroupName=name)
    arn = sagemaker.create_workteam(
        WorkteamName=name, Description=description,
        MemberDefinitions=[{"CognitoMemberDefinition": {
            "UserPool": workforce.user_pool, "UserGroup": name,
            "ClientId": workforce.client_id}}],
    )["WorkteamArn"]
    return arn, workforce
